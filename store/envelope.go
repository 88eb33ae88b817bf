package store

import (
	"encoding/json"
	"fmt"

	"github.com/usipipo/usipipo/store/model"
)

// Envelope is a command in serialised form: what a cluster log carries and
// what a replay reads. Body is the command's JSON (unredacted).
type Envelope struct {
	Kind string          `json:"kind"`
	Meta Meta            `json:"meta"`
	Body json.RawMessage `json:"body"`
}

// Seal serialises an op.
func Seal(op Op) (Envelope, error) {
	b, err := json.Marshal(op.Cmd)
	if err != nil {
		return Envelope{}, fmt.Errorf("encoding %s: %w", op.Cmd.Kind(), err)
	}
	return Envelope{Kind: op.Cmd.Kind(), Meta: op.Meta, Body: b}, nil
}

// Open decodes an envelope back into an op. Unknown kinds are refused, so a
// node never half-applies a command a newer node invented.
func (e Envelope) Open() (Op, error) {
	cmd, err := decodeCommand(e)
	if err != nil {
		return Op{}, err
	}
	return Op{Meta: e.Meta, Cmd: cmd}, nil
}

func decodeCommand(e Envelope) (Command, error) {
	switch e.Kind {
	case CreateUser{}.Kind():
		return dec[CreateUser](e)
	case UpdateUser{}.Kind():
		return dec[UpdateUser](e)
	case SetBanned{}.Kind():
		return dec[SetBanned](e)
	case GrantRole{}.Kind():
		return dec[GrantRole](e)
	case EraseUser{}.Kind():
		return dec[EraseUser](e)
	case CreateKey{}.Kind():
		return dec[CreateKey](e)
	case SetKeyStatus{}.Kind():
		return dec[SetKeyStatus](e)
	case UpdateKey{}.Kind():
		return dec[UpdateKey](e)
	case ExpireKeys{}.Kind():
		return dec[ExpireKeys](e)
	case CreateProxy{}.Kind():
		return dec[CreateProxy](e)
	case SetProxyStatus{}.Kind():
		return dec[SetProxyStatus](e)
	case PutPlan{}.Kind():
		return dec[PutPlan](e)
	case GrantPlan{}.Kind():
		return dec[GrantPlan](e)
	case CreatePayment{}.Kind():
		return dec[CreatePayment](e)
	case SettlePayment{}.Kind():
		return dec[SettlePayment](e)
	case AddCredits{}.Kind():
		return dec[AddCredits](e)
	case SettleDataPayment{}.Kind():
		return dec[SettleDataPayment](e)
	case RefundPayment{}.Kind():
		return dec[RefundPayment](e)
	case ExpirePayment{}.Kind():
		return dec[ExpirePayment](e)
	case RejectPayment{}.Kind():
		return dec[RejectPayment](e)
	case OpenTicket{}.Kind():
		return dec[OpenTicket](e)
	case ReplyTicket{}.Kind():
		return dec[ReplyTicket](e)
	case PutSetting{}.Kind():
		return dec[PutSetting](e)
	case CreateAPIKey{}.Kind():
		return dec[CreateAPIKey](e)
	case RevokeAPIKey{}.Kind():
		return dec[RevokeAPIKey](e)
	case PutAdmin{}.Kind():
		return dec[PutAdmin](e)
	case SetAdminTOTP{}.Kind():
		return dec[SetAdminTOTP](e)
	case UseRecoveryCode{}.Kind():
		return dec[UseRecoveryCode](e)
	case RecordLoginFailure{}.Kind():
		return dec[RecordLoginFailure](e)
	case UsageBatch{}.Kind():
		return dec[UsageBatch](e)
	case PruneAudit{}.Kind():
		return dec[PruneAudit](e)
	case SpendCredits{}.Kind():
		return dec[SpendCredits](e)
	case RevokeSubscription{}.Kind():
		return dec[RevokeSubscription](e)
	case Housekeep{}.Kind():
		return dec[Housekeep](e)
	}
	return nil, fmt.Errorf("command %q: %w", e.Kind, model.ErrUnknownCmd)
}

func dec[T Command](e Envelope) (Command, error) {
	var c T
	if err := json.Unmarshal(e.Body, &c); err != nil {
		return nil, fmt.Errorf("decoding %s: %w", e.Kind, err)
	}
	return c, nil
}
