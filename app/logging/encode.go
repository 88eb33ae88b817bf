package logging

import (
	"bytes"
	"encoding"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"time"
	"unicode/utf8"
)

// appendString appends s as a JSON string. Like encoding/json it escapes
// control characters, '"', '\\', U+2028 and U+2029, and replaces invalid
// UTF-8 with U+FFFD; unlike it, it leaves <, > and & alone, as slog does.
func appendString(buf []byte, s string) []byte {
	buf = append(buf, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			buf = append(buf, s[start:i]...)
			switch c {
			case '"', '\\':
				buf = append(buf, '\\', c)
			case '\n':
				buf = append(buf, '\\', 'n')
			case '\r':
				buf = append(buf, '\\', 'r')
			case '\t':
				buf = append(buf, '\\', 't')
			default:
				buf = append(buf, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			buf = append(buf, s[start:i]...)
			buf = append(buf, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			buf = append(buf, s[start:i]...)
			buf = append(buf, '\\', 'u', '2', '0', '2', hex[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	buf = append(buf, s[start:]...)
	return append(buf, '"')
}

const hex = "0123456789abcdef"

// appendKey appends a JSON object key and its colon.
func appendKey(buf []byte, key string) []byte {
	return append(appendString(buf, key), ':')
}

// appendValue appends a resolved, non-group value as JSON.
func appendValue(buf []byte, v slog.Value) []byte {
	switch v.Kind() {
	case slog.KindString:
		return appendString(buf, v.String())
	case slog.KindInt64:
		return strconv.AppendInt(buf, v.Int64(), 10)
	case slog.KindUint64:
		return strconv.AppendUint(buf, v.Uint64(), 10)
	case slog.KindFloat64:
		return appendFloat(buf, v.Float64())
	case slog.KindBool:
		return strconv.AppendBool(buf, v.Bool())
	case slog.KindDuration:
		return appendString(buf, v.Duration().String())
	case slog.KindTime:
		buf = append(buf, '"')
		buf = v.Time().AppendFormat(buf, time.RFC3339Nano)
		return append(buf, '"')
	default:
		return appendAny(buf, v.Any())
	}
}

// appendFloat writes NaN and infinities, which JSON lacks, as strings.
func appendFloat(buf []byte, f float64) []byte {
	switch {
	case math.IsNaN(f):
		return append(buf, `"NaN"`...)
	case math.IsInf(f, 1):
		return append(buf, `"+Inf"`...)
	case math.IsInf(f, -1):
		return append(buf, `"-Inf"`...)
	}
	return strconv.AppendFloat(buf, f, 'g', -1, 64)
}

// appendAny writes an error as its message, an encoding.TextMarshaler as
// its text, and anything else as encoding/json would (without HTML
// escaping). A failure or a panic in the value's methods is written as a
// "!ERROR:" string rather than lost.
func appendAny(buf []byte, x any) (out []byte) {
	start := len(buf)
	defer func() {
		if r := recover(); r != nil {
			out = appendString(buf[:start], fmt.Sprintf("!PANIC: %v", r))
		}
	}()
	switch x := x.(type) {
	case nil:
		return append(buf, "null"...)
	case error:
		return appendString(buf, x.Error())
	case json.Marshaler:
		// handled below, ahead of TextMarshaler, as encoding/json does
	case encoding.TextMarshaler:
		text, err := x.MarshalText()
		if err != nil {
			return appendString(buf, "!ERROR:"+err.Error())
		}
		return appendString(buf, string(text))
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(x); err != nil {
		return appendString(buf, "!ERROR:"+err.Error())
	}
	return append(buf, bytes.TrimRight(b.Bytes(), "\n")...)
}

// appendText appends a value as a JSON string of its text: user_id, ip and
// service are strings whatever type the caller gave.
func appendText(buf []byte, v slog.Value) []byte {
	switch v.Kind() {
	case slog.KindString:
		return appendString(buf, v.String())
	case slog.KindInt64:
		buf = append(buf, '"')
		buf = strconv.AppendInt(buf, v.Int64(), 10)
		return append(buf, '"')
	case slog.KindUint64:
		buf = append(buf, '"')
		buf = strconv.AppendUint(buf, v.Uint64(), 10)
		return append(buf, '"')
	}
	return appendString(buf, v.String())
}

// appendMillis appends a duration_ms value; ok is false for a value that is
// not a duration or a number, which then stays in details.
func appendMillis(buf []byte, v slog.Value) ([]byte, bool) {
	switch v.Kind() {
	case slog.KindDuration:
		return appendFloat(buf, float64(v.Duration())/float64(time.Millisecond)), true
	case slog.KindFloat64, slog.KindInt64, slog.KindUint64:
		return appendValue(buf, v), true
	}
	return buf, false
}

// appendTimestamp appends t in UTC as "2006-01-02T15:04:05.000Z", quoted.
func appendTimestamp(buf []byte, t time.Time) []byte {
	t = t.UTC()
	year, month, day := t.Date()
	hour, min, sec := t.Clock()
	if year < 0 || year > 9999 {
		buf = append(buf, '"')
		buf = t.AppendFormat(buf, "2006-01-02T15:04:05.000Z07:00")
		return append(buf, '"')
	}
	ms := t.Nanosecond() / 1e6
	return append(buf, '"',
		byte('0'+year/1000), byte('0'+year/100%10), byte('0'+year/10%10), byte('0'+year%10), '-',
		byte('0'+month/10), byte('0'+month%10), '-', byte('0'+day/10), byte('0'+day%10), 'T',
		byte('0'+hour/10), byte('0'+hour%10), ':', byte('0'+min/10), byte('0'+min%10), ':',
		byte('0'+sec/10), byte('0'+sec%10), '.', byte('0'+ms/100), byte('0'+ms/10%10), byte('0'+ms%10), 'Z', '"')
}
