package scalers

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/api/resource"
)

// Bounds of ParseQuantity. resource.ParseQuantity takes time that grows
// with the square of a number's digits and of its decimal exponent:
// "1e-999999" takes a third of a second, "1e-999999999" hours, a
// megabyte of digits seconds. Within these bounds it takes microseconds.
const (
	MaxQuantityLength   = 1024
	MaxQuantityExponent = 1000
)

// ErrQuantityOutOfRange is returned by ParseQuantity for a quantity
// beyond MaxQuantityLength or MaxQuantityExponent.
var ErrQuantityOutOfRange = fmt.Errorf("a quantity has at most %d characters and a decimal exponent (e<n>) between -%d and %d",
	MaxQuantityLength, MaxQuantityExponent, MaxQuantityExponent)

// ParseQuantity is resource.ParseQuantity for values that come from users
// or event sources: it refuses, at once, a quantity longer than
// MaxQuantityLength or with a decimal exponent beyond
// MaxQuantityExponent (ErrQuantityOutOfRange), which ParseQuantity would
// take seconds to hours to parse.
func ParseQuantity(s string) (resource.Quantity, error) {
	if len(s) > MaxQuantityLength || quantityExponentTooLarge(s) {
		return resource.Quantity{}, ErrQuantityOutOfRange
	}
	return resource.ParseQuantity(s)
}

// quantityExponentTooLarge reports whether s ends in a decimal exponent
// ("1e3", "5E-2") beyond MaxQuantityExponent. The binary and SI suffixes
// ("1Ei", "2E") are not exponents.
func quantityExponentTooLarge(s string) bool {
	i := strings.IndexAny(s, "eE")
	if i < 0 {
		return false
	}
	exp := strings.TrimLeft(s[i+1:], "+-")
	if exp == "" || strings.Trim(exp, "0123456789") != "" {
		return false
	}
	n, err := strconv.Atoi(exp)
	return errors.Is(err, strconv.ErrRange) || n > MaxQuantityExponent
}
