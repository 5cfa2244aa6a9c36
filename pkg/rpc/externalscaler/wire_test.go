/*
Copyright The ebb Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package externalscaler

import (
	"math"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// The tables below transcribe the external scaler protocol that existing
// external scalers are built against. They are written out by hand, not
// derived from the generated code, so that any change to the proto that
// breaks wire compatibility fails here.

type wantField struct {
	number protowire.Number
	kind   protoreflect.Kind
	list   bool
	isMap  bool
}

var wantMessages = map[protoreflect.FullName]map[protoreflect.Name]wantField{
	"externalscaler.ScaledObjectRef": {
		"name":           {number: 1, kind: protoreflect.StringKind},
		"namespace":      {number: 2, kind: protoreflect.StringKind},
		"scalerMetadata": {number: 3, kind: protoreflect.MessageKind, isMap: true},
	},
	"externalscaler.IsActiveResponse": {
		"result": {number: 1, kind: protoreflect.BoolKind},
	},
	"externalscaler.GetMetricSpecResponse": {
		"metricSpecs": {number: 1, kind: protoreflect.MessageKind, list: true},
	},
	"externalscaler.MetricSpec": {
		"metricName":      {number: 1, kind: protoreflect.StringKind},
		"targetSize":      {number: 2, kind: protoreflect.Int64Kind},
		"targetSizeFloat": {number: 3, kind: protoreflect.DoubleKind},
	},
	"externalscaler.GetMetricsRequest": {
		"scaledObjectRef": {number: 1, kind: protoreflect.MessageKind},
		"metricName":      {number: 2, kind: protoreflect.StringKind},
	},
	"externalscaler.GetMetricsResponse": {
		"metricValues": {number: 1, kind: protoreflect.MessageKind, list: true},
	},
	"externalscaler.MetricValue": {
		"metricName":       {number: 1, kind: protoreflect.StringKind},
		"metricValue":      {number: 2, kind: protoreflect.Int64Kind},
		"metricValueFloat": {number: 3, kind: protoreflect.DoubleKind},
	},
}

type wantMethod struct {
	fullMethod      string
	input, output   protoreflect.FullName
	serverStreaming bool
}

var wantMethods = map[protoreflect.Name]wantMethod{
	"IsActive": {
		fullMethod: "/externalscaler.ExternalScaler/IsActive",
		input:      "externalscaler.ScaledObjectRef", output: "externalscaler.IsActiveResponse",
	},
	"StreamIsActive": {
		fullMethod: "/externalscaler.ExternalScaler/StreamIsActive",
		input:      "externalscaler.ScaledObjectRef", output: "externalscaler.IsActiveResponse",
		serverStreaming: true,
	},
	"GetMetricSpec": {
		fullMethod: "/externalscaler.ExternalScaler/GetMetricSpec",
		input:      "externalscaler.ScaledObjectRef", output: "externalscaler.GetMetricSpecResponse",
	},
	"GetMetrics": {
		fullMethod: "/externalscaler.ExternalScaler/GetMetrics",
		input:      "externalscaler.GetMetricsRequest", output: "externalscaler.GetMetricsResponse",
	},
	// Optional: servers that do not implement it answer Unimplemented.
	"StreamMetricSpec": {
		fullMethod: "/externalscaler.ExternalScaler/StreamMetricSpec",
		input:      "externalscaler.ScaledObjectRef", output: "externalscaler.GetMetricSpecResponse",
		serverStreaming: true,
	},
}

func TestDescriptorMatchesProtocol(t *testing.T) {
	fd := File_externalscaler_externalscaler_proto
	if got := fd.Package(); got != "externalscaler" {
		t.Errorf("proto package = %q, want %q", got, "externalscaler")
	}
	if got := fd.Syntax(); got != protoreflect.Proto3 {
		t.Errorf("syntax = %v, want proto3", got)
	}

	msgs := fd.Messages()
	gotMessages := map[protoreflect.FullName]map[protoreflect.Name]wantField{}
	for i := range msgs.Len() {
		md := msgs.Get(i)
		fields := map[protoreflect.Name]wantField{}
		for j := range md.Fields().Len() {
			f := md.Fields().Get(j)
			fields[f.Name()] = wantField{number: f.Number(), kind: f.Kind(), list: f.IsList(), isMap: f.IsMap()}
			if f.IsMap() {
				if k, v := f.MapKey().Kind(), f.MapValue().Kind(); k != protoreflect.StringKind || v != protoreflect.StringKind {
					t.Errorf("%s.%s is map<%v, %v>, want map<string, string>", md.FullName(), f.Name(), k, v)
				}
			}
			if f.HasPresence() && f.Message() == nil {
				t.Errorf("%s.%s has explicit presence (optional); the protocol has plain proto3 scalars", md.FullName(), f.Name())
			}
		}
		gotMessages[md.FullName()] = fields
	}
	if diff := cmp.Diff(wantMessages, gotMessages, cmp.AllowUnexported(wantField{})); diff != "" {
		t.Errorf("messages differ from the protocol (-want +got):\n%s", diff)
	}

	// Message-typed fields must point at the right messages.
	for _, ref := range []struct {
		msg   protoreflect.Name
		field protoreflect.Name
		want  protoreflect.FullName
	}{
		{"GetMetricSpecResponse", "metricSpecs", "externalscaler.MetricSpec"},
		{"GetMetricsRequest", "scaledObjectRef", "externalscaler.ScaledObjectRef"},
		{"GetMetricsResponse", "metricValues", "externalscaler.MetricValue"},
	} {
		md := msgs.ByName(ref.msg)
		if md == nil {
			continue // reported above
		}
		f := md.Fields().ByName(ref.field)
		if f == nil || f.Message() == nil {
			continue // reported above
		}
		if got := f.Message().FullName(); got != ref.want {
			t.Errorf("%s.%s has type %s, want %s", ref.msg, ref.field, got, ref.want)
		}
	}

	if fd.Services().Len() != 1 {
		t.Fatalf("file has %d services, want 1", fd.Services().Len())
	}
	sd := fd.Services().Get(0)
	if got := sd.FullName(); got != "externalscaler.ExternalScaler" {
		t.Errorf("service = %q, want externalscaler.ExternalScaler", got)
	}
	gotMethods := map[protoreflect.Name]wantMethod{}
	for i := range sd.Methods().Len() {
		m := sd.Methods().Get(i)
		if m.IsStreamingClient() {
			t.Errorf("%s is client-streaming; no method of the protocol is", m.Name())
		}
		gotMethods[m.Name()] = wantMethod{
			fullMethod:      "/" + string(sd.FullName()) + "/" + string(m.Name()),
			input:           m.Input().FullName(),
			output:          m.Output().FullName(),
			serverStreaming: m.IsStreamingServer(),
		}
	}
	if diff := cmp.Diff(wantMethods, gotMethods, cmp.AllowUnexported(wantMethod{})); diff != "" {
		t.Errorf("methods differ from the protocol (-want +got):\n%s", diff)
	}
}

func TestFullMethodNames(t *testing.T) {
	got := map[protoreflect.Name]string{
		"IsActive":         ExternalScaler_IsActive_FullMethodName,
		"StreamIsActive":   ExternalScaler_StreamIsActive_FullMethodName,
		"GetMetricSpec":    ExternalScaler_GetMetricSpec_FullMethodName,
		"GetMetrics":       ExternalScaler_GetMetrics_FullMethodName,
		"StreamMetricSpec": ExternalScaler_StreamMetricSpec_FullMethodName,
	}
	for name, want := range wantMethods {
		if got[name] != want.fullMethod {
			t.Errorf("full method name of %s = %q, want %q", name, got[name], want.fullMethod)
		}
	}
	if got := ExternalScaler_ServiceDesc.ServiceName; got != "externalscaler.ExternalScaler" {
		t.Errorf("ServiceDesc.ServiceName = %q, want externalscaler.ExternalScaler", got)
	}
}

// wireField is one field as it appears on the wire.
type wireField struct {
	Num  protowire.Number
	Type protowire.Type
	// Exactly one of these is set, depending on Type.
	Varint  uint64
	Fixed64 uint64
	Bytes   string
	// Nested holds Bytes decoded as a message, when the test expects one.
	Nested []wireField
}

// nesting says which length-delimited fields hold messages to decode
// further, and, for each, the nesting inside that message.
type nesting map[protowire.Number]nesting

// decodeWire splits b into its fields using nothing but the wire format (no
// descriptor), decoding the fields named in nest as nested messages.
func decodeWire(t *testing.T, b []byte, nest nesting) []wireField {
	t.Helper()
	var out []wireField
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			t.Fatalf("bad tag: %v", protowire.ParseError(n))
		}
		b = b[n:]
		f := wireField{Num: num, Type: typ}
		switch typ {
		case protowire.VarintType:
			f.Varint, n = protowire.ConsumeVarint(b)
		case protowire.Fixed64Type:
			f.Fixed64, n = protowire.ConsumeFixed64(b)
		case protowire.BytesType:
			var v []byte
			v, n = protowire.ConsumeBytes(b)
			if n >= 0 {
				if sub, ok := nest[num]; ok {
					f.Nested = decodeWire(t, v, sub)
				} else {
					f.Bytes = string(v)
				}
			}
		default:
			t.Fatalf("field %d has unexpected wire type %v", num, typ)
		}
		if n < 0 {
			t.Fatalf("bad value of field %d: %v", num, protowire.ParseError(n))
		}
		b = b[n:]
		out = append(out, f)
	}
	return out
}

func TestMarshalUsesProtocolFieldNumbers(t *testing.T) {
	deterministic := proto.MarshalOptions{Deterministic: true}

	req := &GetMetricsRequest{
		ScaledObjectRef: &ScaledObjectRef{
			Name:           "orders",
			Namespace:      "shop",
			ScalerMetadata: map[string]string{"queue": "q1"},
		},
		MetricName: "queueLength",
	}
	b, err := deterministic.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	// GetMetricsRequest.scaledObjectRef (1) holds ScaledObjectRef, whose
	// scalerMetadata (3) entries are messages {key = 1, value = 2}.
	got := decodeWire(t, b, nesting{1: {3: nil}})
	want := []wireField{
		{Num: 1, Type: protowire.BytesType, Nested: []wireField{
			{Num: 1, Type: protowire.BytesType, Bytes: "orders"},
			{Num: 2, Type: protowire.BytesType, Bytes: "shop"},
			{Num: 3, Type: protowire.BytesType, Nested: []wireField{
				{Num: 1, Type: protowire.BytesType, Bytes: "queue"},
				{Num: 2, Type: protowire.BytesType, Bytes: "q1"},
			}},
		}},
		{Num: 2, Type: protowire.BytesType, Bytes: "queueLength"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("GetMetricsRequest on the wire (-want +got):\n%s", diff)
	}

	resp := &GetMetricsResponse{MetricValues: []*MetricValue{
		{MetricName: "queueLength", MetricValue: 7, MetricValueFloat: 7.5},
	}}
	if b, err = deterministic.Marshal(resp); err != nil {
		t.Fatal(err)
	}
	got = decodeWire(t, b, nesting{1: nil})
	want = []wireField{
		{Num: 1, Type: protowire.BytesType, Nested: []wireField{
			{Num: 1, Type: protowire.BytesType, Bytes: "queueLength"},
			{Num: 2, Type: protowire.VarintType, Varint: 7},
			{Num: 3, Type: protowire.Fixed64Type, Fixed64: math.Float64bits(7.5)},
		}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("GetMetricsResponse on the wire (-want +got):\n%s", diff)
	}

	spec := &GetMetricSpecResponse{MetricSpecs: []*MetricSpec{
		{MetricName: "queueLength", TargetSize: 10, TargetSizeFloat: 2.5},
	}}
	if b, err = deterministic.Marshal(spec); err != nil {
		t.Fatal(err)
	}
	got = decodeWire(t, b, nesting{1: nil})
	want = []wireField{
		{Num: 1, Type: protowire.BytesType, Nested: []wireField{
			{Num: 1, Type: protowire.BytesType, Bytes: "queueLength"},
			{Num: 2, Type: protowire.VarintType, Varint: 10},
			{Num: 3, Type: protowire.Fixed64Type, Fixed64: math.Float64bits(2.5)},
		}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("GetMetricSpecResponse on the wire (-want +got):\n%s", diff)
	}

	if b, err = deterministic.Marshal(&IsActiveResponse{Result: true}); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]wireField{{Num: 1, Type: protowire.VarintType, Varint: 1}}, decodeWire(t, b, nil)); diff != "" {
		t.Errorf("IsActiveResponse on the wire (-want +got):\n%s", diff)
	}
}

// TestUnmarshalHandEncoded decodes bytes laid out by hand from the protocol,
// as an external scaler built from any copy of it would send them.
func TestUnmarshalHandEncoded(t *testing.T) {
	var b []byte
	// GetMetricsResponse.metricValues (1) = MetricValue{...}
	var mv []byte
	mv = protowire.AppendTag(mv, 1, protowire.BytesType)
	mv = protowire.AppendString(mv, "queueLength")
	mv = protowire.AppendTag(mv, 2, protowire.VarintType)
	minusThree := int64(-3)
	mv = protowire.AppendVarint(mv, uint64(minusThree)) // int64: two's complement, not zigzag
	mv = protowire.AppendTag(mv, 3, protowire.Fixed64Type)
	mv = protowire.AppendFixed64(mv, math.Float64bits(0.25))
	b = protowire.AppendTag(b, 1, protowire.BytesType)
	b = protowire.AppendBytes(b, mv)

	var resp GetMetricsResponse
	if err := proto.Unmarshal(b, &resp); err != nil {
		t.Fatalf("Unmarshal: %v", err)
	}
	if n := len(resp.GetMetricValues()); n != 1 {
		t.Fatalf("got %d metric values, want 1", n)
	}
	got := resp.GetMetricValues()[0]
	if got.GetMetricName() != "queueLength" || got.GetMetricValue() != -3 || got.GetMetricValueFloat() != 0.25 {
		t.Errorf("decoded %v, want metricName=queueLength metricValue=-3 metricValueFloat=0.25", got)
	}
	if len(got.ProtoReflect().GetUnknown()) != 0 || len(resp.ProtoReflect().GetUnknown()) != 0 {
		t.Errorf("hand-encoded fields were left unknown: the field numbers do not match")
	}

	// ScaledObjectRef with a scalerMetadata entry (3) = {key = 1, value = 2}.
	var entry, ref []byte
	entry = protowire.AppendTag(entry, 1, protowire.BytesType)
	entry = protowire.AppendString(entry, "address")
	entry = protowire.AppendTag(entry, 2, protowire.BytesType)
	entry = protowire.AppendString(entry, "scaler:6000")
	ref = protowire.AppendTag(ref, 1, protowire.BytesType)
	ref = protowire.AppendString(ref, "orders")
	ref = protowire.AppendTag(ref, 2, protowire.BytesType)
	ref = protowire.AppendString(ref, "shop")
	ref = protowire.AppendTag(ref, 3, protowire.BytesType)
	ref = protowire.AppendBytes(ref, entry)
	var sor ScaledObjectRef
	if err := proto.Unmarshal(ref, &sor); err != nil {
		t.Fatalf("Unmarshal: %v", err)
	}
	want := &ScaledObjectRef{Name: "orders", Namespace: "shop", ScalerMetadata: map[string]string{"address": "scaler:6000"}}
	if !proto.Equal(&sor, want) {
		t.Errorf("decoded %v, want %v", &sor, want)
	}
}
