package admin

import (
	"errors"
	"strings"
	"testing"

	"github.com/usipipo/usipipo/store/model"
)

// A node without a payment service refuses pay.qvapay clearly, and the
// refusal never quotes the secret.
func TestPayQvaPayWithoutPayments(t *testing.T) {
	sock := serveTest(t)
	r := rawCall(t, sock, `{"method":"pay.qvapay","params":{"app_id":"a","secret":"s3cr3t-value"}}`+"\n")
	if r.Error == nil || r.Error.Code != "invalid" || !strings.Contains(r.Error.Message, "no payment service") ||
		strings.Contains(r.Error.Message, "s3cr3t-value") {
		t.Fatalf("answer %+v", r)
	}
}

func TestQvaPayFieldChecks(t *testing.T) {
	for _, bad := range []string{"", "two words", "tab\there", "nl\n", strings.Repeat("x", maxQvaPayField+1), "bell\a"} {
		err := checkQvaPayField("secret", bad)
		if !errors.Is(err, model.ErrInvalid) || (bad != "" && strings.Contains(err.Error(), bad)) {
			t.Errorf("%q: %v", bad, err)
		}
	}
	if err := checkQvaPayField("secret", "9955dd29-082f-470b-882d-f4f0f25ea144"); err != nil {
		t.Fatal(err)
	}
}
