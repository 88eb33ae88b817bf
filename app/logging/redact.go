package logging

// redacted replaces the value of a sensitive attribute.
const redacted = "[redacted]"

// sensitiveNames are the keys, compared case-insensitively with '-' read as
// '_', whose values are never written; indexed by length for speed.
var sensitiveNames = func() (byLen [14][]string) {
	for _, name := range []string{
		"password", "passphrase", "token", "secret", "private_key", "psk",
		"api_key", "authorization", "cookie", "totp",
	} {
		byLen[len(name)] = append(byLen[len(name)], name)
	}
	return byLen
}()

// sensitiveSuffixes mark a key as sensitive too: bot_token, client_secret...
var sensitiveSuffixes = [...]string{"_secret", "_token", "_password"}

// Sensitive reports whether an attribute with this key is written as
// "[redacted]": it is one of password, passphrase, token, secret,
// private_key, psk, api_key, authorization, cookie or totp, or ends with
// _secret, _token or _password — ignoring case, and reading '-' as '_'.
func Sensitive(key string) bool {
	if len(key) < len(sensitiveNames) {
		for _, name := range sensitiveNames[len(key)] {
			if keyEqual(key, name) {
				return true
			}
		}
	}
	for _, suffix := range sensitiveSuffixes {
		if len(key) >= len(suffix) && keyEqual(key[len(key)-len(suffix):], suffix) {
			return true
		}
	}
	return false
}

// keyEqual compares key with a lower-case ASCII name of the same length.
func keyEqual(key, name string) bool {
	for i := 0; i < len(name); i++ {
		c := key[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		} else if c == '-' {
			c = '_'
		}
		if c != name[i] {
			return false
		}
	}
	return true
}
