package app

import "fmt"

// onceRef returns the id a command applied under an idempotency key made or
// changed: id itself when there is no key, else the id the first command
// under that key recorded (a repeat changed nothing and made nothing).
func (s *Service) onceRef(key, id string) (string, error) {
	if key == "" {
		return id, nil
	}
	ref, ok, err := s.st.OnceRef(key)
	if err != nil {
		return "", err
	}
	if !ok {
		return "", fmt.Errorf("idempotency key %q was not recorded", key)
	}
	return ref, nil
}
