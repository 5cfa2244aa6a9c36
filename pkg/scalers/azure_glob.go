package scalers

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"
)

// globMatcher matches blob names against an azure-blob globPattern.
//
// The syntax is the one KEDA compiles globPattern with (the gobwas/glob
// package, without separators): "*" and "**" match any sequence of
// characters ("/" included), "?" any one character, "[abc]" and "[a-z]"
// one of the characters or of the range, "[!abc]" and "[!a-z]" one
// character that is not, "{a,b}" one of the alternatives (which may hold
// patterns, nested), and "\" makes the next character literal. "," and
// "}" are literal outside of braces. The pattern must match the whole
// name. ebb compiles it to a regular expression.
type globMatcher struct {
	re *regexp.Regexp
}

// Match reports whether name matches the whole pattern.
func (g *globMatcher) Match(name string) bool { return g.re.MatchString(name) }

// maxGlobLength bounds a pattern, so a pathological one cannot build a
// huge expression.
const maxGlobLength = 1024

func compileGlob(pattern string) (*globMatcher, error) {
	if len(pattern) > maxGlobLength {
		return nil, fmt.Errorf("longer than %d bytes", maxGlobLength)
	}
	if !utf8.ValidString(pattern) {
		return nil, errors.New("invalid UTF-8")
	}
	p := &globParser{src: pattern}
	var b strings.Builder
	b.WriteString(`^(?s:`)
	if err := p.sequence(&b, 0); err != nil {
		return nil, err
	}
	b.WriteString(`)$`)
	re, err := regexp.Compile(b.String())
	if err != nil {
		// Nesting or size beyond what the regexp package accepts.
		return nil, errors.New("too complex")
	}
	return &globMatcher{re: re}, nil
}

type globParser struct {
	src string
	pos int
}

func (p *globParser) next() (rune, bool) {
	if p.pos >= len(p.src) {
		return 0, false
	}
	r, w := utf8.DecodeRuneInString(p.src[p.pos:])
	p.pos += w
	return r, true
}

func (p *globParser) peek() (rune, bool) {
	if p.pos >= len(p.src) {
		return 0, false
	}
	r, _ := utf8.DecodeRuneInString(p.src[p.pos:])
	return r, true
}

// sequence translates up to the end of the pattern, or, inside braces
// (depth > 0), up to the "," or "}" that ends the alternative (left
// unread).
func (p *globParser) sequence(b *strings.Builder, depth int) error {
	for {
		r, ok := p.peek()
		if !ok {
			return nil
		}
		if depth > 0 && (r == ',' || r == '}') {
			return nil
		}
		p.next()
		switch r {
		case '*':
			if n, ok := p.peek(); ok && n == '*' {
				p.next()
			}
			b.WriteString(`.*`)
		case '?':
			b.WriteString(`.`)
		case '[':
			if err := p.class(b); err != nil {
				return err
			}
		case '{':
			if err := p.alternatives(b, depth+1); err != nil {
				return err
			}
		case '\\':
			e, ok := p.next()
			if !ok {
				return errors.New("trailing backslash")
			}
			b.WriteString(regexp.QuoteMeta(string(e)))
		default:
			b.WriteString(regexp.QuoteMeta(string(r)))
		}
	}
}

// alternatives translates "{a,b,...}" after its "{".
func (p *globParser) alternatives(b *strings.Builder, depth int) error {
	b.WriteString(`(?:`)
	for {
		if err := p.sequence(b, depth); err != nil {
			return err
		}
		r, ok := p.next()
		switch {
		case !ok:
			return errors.New("unclosed {")
		case r == ',':
			b.WriteString(`|`)
		default: // '}'
			b.WriteString(`)`)
			return nil
		}
	}
}

// class translates "[...]" after its "[": an optional "!", then either a
// range "x-y" or a list of characters ("\" escapes one).
func (p *globParser) class(b *strings.Builder) error {
	not := false
	if r, ok := p.peek(); ok && r == '!' {
		p.next()
		not = true
	}
	open := `[`
	if not {
		open = `[^`
	}
	lo, ok := p.next()
	if !ok {
		return errors.New("unclosed [")
	}
	if r, ok := p.peek(); ok && r == '-' && lo != ']' && lo != '\\' {
		p.next()
		hi, ok := p.next()
		if !ok {
			return errors.New("unclosed [")
		}
		if hi < lo {
			return fmt.Errorf("range %c-%c is reversed", lo, hi)
		}
		if r, ok := p.next(); !ok || r != ']' {
			return errors.New("a range [x-y] must end after y with ]")
		}
		fmt.Fprintf(b, `%s\x{%x}-\x{%x}]`, open, lo, hi)
		return nil
	}
	var chars []rune
	for r := lo; ; {
		if r == ']' {
			break
		}
		if r == '\\' {
			e, ok := p.next()
			if !ok {
				return errors.New("unclosed [")
			}
			r = e
		}
		chars = append(chars, r)
		if r, ok = p.next(); !ok {
			return errors.New("unclosed [")
		}
	}
	if len(chars) == 0 {
		return errors.New("empty []")
	}
	b.WriteString(open)
	for _, c := range chars {
		fmt.Fprintf(b, `\x{%x}`, c)
	}
	b.WriteString(`]`)
	return nil
}
