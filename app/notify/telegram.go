package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/usipipo/usipipo/app/pay"
)

// telegram sends messages and documents through the Bot API. It speaks to
// the same base URL as pay.BotAPI (--bot-api-url) and reports refusals as
// *pay.APIError, so callers of either read one error type. The token is in
// every URL, so transport errors never carry the URL.
type telegram struct {
	base string // <api>/bot<token>/
	hc   *http.Client
}

func newTelegram(apiURL, token string, hc *http.Client) *telegram {
	return &telegram{base: strings.TrimRight(apiURL, "/") + "/bot" + token + "/", hc: hc}
}

// maxDocument is the Bot API's upload limit for sendDocument.
const maxDocument = 50 << 20

// sendMessage sends text to chat.
func (t *telegram) sendMessage(ctx context.Context, chat int64, text string) error {
	body, err := json.Marshal(map[string]any{"chat_id": chat, "text": text, "link_preview_options": map[string]bool{"is_disabled": true}})
	if err != nil {
		return fmt.Errorf("telegram sendMessage: encoding: %w", err)
	}
	return t.post(ctx, "sendMessage", "application/json", bytes.NewReader(body))
}

// sendDocument uploads the document r (named name) to chat as
// multipart/form-data, streamed rather than held in memory.
func (t *telegram) sendDocument(ctx context.Context, chat int64, name string, r io.Reader, caption string) error {
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	wrote := make(chan struct{})
	go func() {
		defer close(wrote)
		pw.CloseWithError(writeDocumentForm(mw, chat, name, r, caption))
	}()
	err := t.post(ctx, "sendDocument", mw.FormDataContentType(), pr)
	pr.CloseWithError(errors.New("request finished")) // unblocks the writer if the request ended early
	<-wrote                                           // r is the caller's again
	return err
}

func writeDocumentForm(mw *multipart.Writer, chat int64, name string, r io.Reader, caption string) error {
	if err := mw.WriteField("chat_id", strconv.FormatInt(chat, 10)); err != nil {
		return err
	}
	if caption != "" {
		if err := mw.WriteField("caption", caption); err != nil {
			return err
		}
	}
	fw, err := mw.CreateFormFile("document", name)
	if err != nil {
		return err
	}
	if _, err := io.Copy(fw, r); err != nil {
		return fmt.Errorf("reading the document: %w", err)
	}
	return mw.Close()
}

type apiResponse struct {
	ErrorCode   int    `json:"error_code"`
	Description string `json:"description"`
	Parameters  *struct {
		RetryAfter int `json:"retry_after"`
	} `json:"parameters"`
}

func (t *telegram) post(ctx context.Context, method, ctype string, body io.Reader) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.base+method, body)
	if err != nil {
		return fmt.Errorf("telegram %s: bad request", method)
	}
	req.Header.Set("Content-Type", ctype)
	resp, err := t.hc.Do(req)
	if err != nil {
		return fmt.Errorf("telegram %s: %w", method, scrubURL(err))
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("telegram %s: reading: %w", method, scrubURL(err))
	}
	return parseResponse(method, resp.StatusCode, raw)
}

// parseResponse reads a Bot API answer: nil for "ok": true, else the
// refusal as *pay.APIError (with retry_after when flood control asks).
func parseResponse(method string, status int, raw []byte) error {
	var ok struct {
		OK bool `json:"ok"`
	}
	if err := json.Unmarshal(raw, &ok); err != nil {
		return &pay.APIError{Provider: "telegram", Method: method, Status: status, Description: "response is not JSON"}
	}
	if ok.OK {
		return nil // an odd field elsewhere does not undo a delivery
	}
	var r apiResponse
	_ = json.Unmarshal(raw, &r) // details are best effort: it is a refusal either way
	e := &pay.APIError{Provider: "telegram", Method: method, Status: r.ErrorCode, Description: r.Description}
	if e.Status == 0 {
		e.Status = status
	}
	if r.Parameters != nil {
		e.RetryAfter = r.Parameters.RetryAfter
	}
	return e
}

// scrubURL drops the URL (which holds the token) from a transport error.
func scrubURL(err error) error {
	if ue, ok := errors.AsType[*url.Error](err); ok && ue.Err != nil {
		return ue.Err
	}
	return err
}
