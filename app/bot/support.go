package bot

import (
	"fmt"
	"strings"

	tele "gopkg.in/telebot.v3"

	"github.com/usipipo/usipipo/app"
	"github.com/usipipo/usipipo/app/bot/i18n"
	"github.com/usipipo/usipipo/store"
	"github.com/usipipo/usipipo/store/model"
)

// support starts a new ticket: the next message is its subject, the one
// after it its first message.
func (r *req) support() error {
	if err := r.b.saveState(r.tgID, &convState{Flow: "ticket", Step: "subject"}); err != nil {
		return err
	}
	return r.say(r.t("support.ask_subject"), kb(row(r.btn(r.t("btn.my_tickets"), "sup.list"))))
}

func (r *req) ticketStep() error {
	text := strings.TrimSpace(r.text)
	if text == "" {
		return r.say(r.t("support.need_text"), nil)
	}
	if r.state.Step == "subject" {
		if len(text) > 200 {
			return r.say(r.t("support.subject_long"), nil)
		}
		r.state.Step, r.state.Data = "text", map[string]string{"subject": text}
		if err := r.b.saveState(r.tgID, r.state); err != nil {
			return err
		}
		return r.say(r.t("support.ask_text"), nil)
	}
	t, err := r.b.app.OpenTicketOnce(r.ctx, app.BotActor(r.tgID), onceKey(r.ctx, r.tgID, "ticket"), r.user.ID, r.state.Data["subject"], text)
	if err != nil {
		return err
	}
	if err := r.b.clearState(r.tgID); err != nil {
		return err
	}
	r.b.notifyAdmins(r.ctx, "admin.ticket_new", "id", t.ID, "user", t.UserID, "subject", t.Subject, "text", text)
	return r.say(r.t("support.opened", "id", t.ID), kb(row(r.btn(r.t("btn.view"), "sup.view", t.ID))))
}

func (r *req) myTickets() error {
	var rows [][]tele.InlineButton
	for _, st := range []model.TicketStatus{model.TicketOpen, model.TicketClosed} {
		ts, _, err := r.b.app.Tickets(r.ctx, st, r.user.ID, store.Page{Limit: 10})
		if err != nil {
			return err
		}
		for _, t := range ts {
			rows = append(rows, row(r.btn(fmt.Sprintf("%s · %s", r.t("ticket."+string(t.Status)), cut(t.Subject, 40)), "sup.view", t.ID)))
		}
	}
	rows = append(rows, row(r.btn(r.t("btn.new_ticket"), "sup")), r.back())
	return r.show(r.t("support.list"), kb(rows...))
}

// ticket is the ticket a callback names: the user's own, or any for an
// admin.
func (r *req) ticket() (*app.TicketView, error) {
	if len(r.args) != 1 {
		return nil, model.ErrInvalid
	}
	if r.isAdmin() {
		return r.b.app.Ticket(r.ctx, r.args[0])
	}
	return r.b.app.OwnTicket(r.ctx, r.user.ID, r.args[0])
}

// renderTicket is a ticket's conversation, newest last.
func (r *req) renderTicket(t *app.TicketView) string {
	var sb strings.Builder
	sb.WriteString(r.t("ticket.head", "id", t.ID, "subject", t.Subject, "status", r.t("ticket."+string(t.Status))))
	msgs := t.Messages
	if len(msgs) > 10 {
		msgs = msgs[len(msgs)-10:]
	}
	for _, m := range msgs {
		who := r.t("ticket.you")
		if strings.HasPrefix(m.From, "admin:") {
			who = r.t("ticket.support")
		} else if r.isAdmin() && m.From != r.user.ID {
			who = r.t("ticket.user")
		}
		sb.WriteString("\n\n" + who + " · " + m.At.UTC().Format("2006-01-02 15:04") + "\n" + cut(m.Text, 600))
	}
	return cut(sb.String(), 4000)
}

func (r *req) ticketView() error {
	t, err := r.ticket()
	if err != nil {
		return err
	}
	var rows [][]tele.InlineButton
	if t.Status == model.TicketOpen {
		rows = append(rows, row(r.btn(r.t("btn.reply"), "sup.reply", t.ID), r.btn(r.t("btn.close_ticket"), "sup.close", t.ID)))
	}
	rows = append(rows, row(r.btn(r.t("btn.back"), "sup.list")))
	return r.show(r.renderTicket(t), kb(rows...))
}

func (r *req) ticketReply() error {
	t, err := r.ticket()
	if err != nil {
		return err
	}
	if err := r.b.saveState(r.tgID, &convState{Flow: "reply", Data: map[string]string{"ticket": t.ID}}); err != nil {
		return err
	}
	return r.say(r.t("support.ask_reply", "id", t.ID), nil)
}

// replyStep adds the user's (or an admin's) message to the ticket and
// tells the other side.
func (r *req) replyStep() error {
	r.args = []string{r.state.Data["ticket"]}
	t, err := r.ticket()
	if err != nil {
		r.b.clearState(r.tgID)
		return err
	}
	text := strings.TrimSpace(r.text)
	if text == "" {
		return r.say(r.t("support.need_text"), nil)
	}
	from := r.user.ID
	asAdmin := t.UserID != r.user.ID
	if asAdmin {
		from = fmt.Sprintf("admin:%d", r.tgID)
	}
	if _, err := r.b.app.ReplyTicketOnce(r.ctx, app.BotActor(r.tgID), onceKey(r.ctx, r.tgID, "reply:"+t.ID), t.ID, from, text); err != nil {
		return err
	}
	if err := r.b.clearState(r.tgID); err != nil {
		return err
	}
	if asAdmin {
		if owner, err := r.b.app.Store().User(t.UserID); err == nil && owner.TelegramID != 0 {
			lang := i18n.Lang(owner.Language)
			k := kb(row(tele.InlineButton{Text: r.b.cat.T(lang, "btn.view"), Data: r.b.cbData(owner.TelegramID, "sup.view", t.ID)}))
			r.b.tg.send(r.ctx, owner.TelegramID, r.b.cat.T(lang, "support.admin_replied", "id", t.ID, "text", text), k)
		}
	} else {
		r.b.notifyAdmins(r.ctx, "admin.ticket_reply", "id", t.ID, "user", t.UserID, "text", text)
	}
	return r.say(r.t("support.replied"), kb(row(r.btn(r.t("btn.view"), "sup.view", t.ID))))
}

func (r *req) ticketClose() error {
	t, err := r.ticket()
	if err != nil {
		return err
	}
	if err := r.b.app.SetTicketStatus(r.ctx, app.BotActor(r.tgID), t.ID, model.TicketClosed); err != nil {
		return err
	}
	return r.show(r.t("support.closed", "id", t.ID), kb(row(r.btn(r.t("btn.back"), "sup.list"))))
}

// cut shortens s to at most n runes.
func cut(s string, n int) string {
	rs := []rune(s)
	if len(rs) <= n {
		return s
	}
	return string(rs[:n-1]) + "…"
}
