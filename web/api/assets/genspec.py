"""Writes openapi.json beside this file: the REST API's OpenAPI 3 document,
embedded in the binary by docs.go. Edit here, run `go generate ./web/api`;
TestContractRoutes fails when a route and the document disagree."""
import json, os
P="#/components/schemas/"
def ref(n): return {"$ref":P+n}
def obj(props, req=()):
    o={"type":"object","properties":props}
    if req: o["required"]=list(req)
    return o
S={"type":"string"}; I={"type":"integer"}; B={"type":"boolean"}; T={"type":"string","format":"date-time"}
schemas={
 "Problem": obj({"type":S,"title":S,"status":I,"detail":S,"instance":S,"request_id":S},["type","title","status"]),
 "User": obj({"id":S,"version":I,"telegram_id":I,"language":S,"referral_code":S,"banned":B,"erased":B,"role":S,"balance":I,"personal":{"type":"object"},"created":T,"updated":T},["id","version"]),
 "Plan": obj({"id":S,"version":I,"name":S,"duration_days":I,"max_keys":I,"active":B},["id"]),
 "Subscription": obj({"id":S,"user_id":S,"plan_id":S},["id"]),
 "Key": obj({"id":S,"version":I,"user_id":S,"type":{"type":"string","enum":["wireguard","outline"]},"name":S,"status":S,"limits":{"type":"object"},"public":S,"addr_v4":S,"addr_v6":S,"created":T},["id","version","user_id","type","status"]),
 "Proxy": obj({"id":S,"version":I,"user_id":S,"status":S,"limits":{"type":"object"},"created":T},["id","version","user_id","status"]),
 "ClientConfig": obj({"id":S,"type":S,"filename":S,"text":S,"link":S,"dynamic":{"type":"string","description":"an Outline key's ssconf:// dynamic access key URL, when the public listener is on"}},["id","type","text"]),
 "KeyWithConfig": obj({"key":{"type":"object"},"config":ref("ClientConfig")},["key","config"]),
 "APIKey": obj({"id":S,"version":I,"name":S,"scopes":{"type":"array","nullable":True,"items":S},"created":T,"expires_at":T,"revoked":B},["id"]),
 "NewAPIKey": obj({"key":ref("APIKey"),"token":{"type":"string","pattern":"^usp_"}},["key","token"]),
 "CreditEntry": obj({"id":S,"user_id":S,"amount":I,"reason":S},["id","amount"]),
 "AuditEntry": obj({"seq":I,"at":T,"actor":S,"user_id":S,"action":S,"command":{},"error":S},["seq","action"]),
 "Balance": obj({"user_id":S,"balance":I},["user_id","balance"]),
 "Referrals": obj({"code":S,"invited":I,"vested":I,"earned":I,"pending":I},["code","invited"]),
 "Tokens": obj({"access_token":S,"token_type":{"type":"string","enum":["Bearer"]},"expires_in":I,"expires_at":T,"refresh_token":S,"must_change_password":B},["access_token","token_type","expires_in","refresh_token"]),
 "Health": obj({"status":S,"node":S,"time":T},["status"]),
 "Export": {"type":"object","properties":{"user":ref("User")},"required":["user"]},
 "Payment": obj({"id":S,"version":I,"user_id":S,"provider":S,"provider_charge_id":S,"amount":I,"currency":S,"status":{"type":"string","enum":["pending","paid","refunded","failed","expired"]},"product":obj({"kind":S,"ref_id":S,"months":I,"qty":I}),"created":T,"paid_at":T,"refunded_at":T},["id","version","user_id","provider","amount","currency","status","created"]),
 "TicketMessage": obj({"from":{"type":"string","description":"the user's id, or admin:<name>"},"text":S,"at":T},["from","text","at"]),
 "Ticket": obj({"id":S,"user_id":S,"version":I,"status":{"type":"string","enum":["open","closed"]},"subject":S,"messages":{"type":"array","items":ref("TicketMessage")},"created":T,"updated":T},["id","user_id","version","status","subject","messages"]),
 "Policy": obj({"trials_enabled":B,"trial_days":I,"trial_data_bytes":I,"trial_speed_bps":I,"trial_protocols":{"type":"array","nullable":True,"items":{"type":"string","enum":["wireguard","outline","mtproto"]}},"referral_credits":I,"max_conns_default":I,"outline_prefix":S},["trials_enabled","trial_days"]),
 "Catalogue": {"type":"object","description":"what is sold besides plans, and the selling rules (app/pay Catalogue)","properties":{"discounts":{"type":"array","nullable":True,"items":{"type":"object"}},"max_months":I,"data_packages":{"type":"array","nullable":True,"items":{"type":"object"}},"slot":{"type":"object"},"max_slots":I,"credit_packages":{"type":"array","nullable":True,"items":{"type":"object"}},"max_open_invoices":I,"invoice_ttl_minutes":I,"refunds_to_block":I,"trial_like_max_days":I}},
 "Settings": obj({"policy":ref("Policy"),"catalogue":ref("Catalogue"),"secrets":{"type":"object","description":"write-only secrets: only whether each is set","additionalProperties":obj({"set":B},["set"])}},["policy","secrets"]),
 "DayStat": obj({"day":{"type":"string","format":"date"},"revenue_stars":I,"revenue_usd_cents":I,"bytes_in":I,"bytes_out":I,"new_users":I},["day","revenue_stars","revenue_usd_cents","bytes_in","bytes_out","new_users"]),
 "Stats": obj({"users":I,"active_users":I,"active_keys":{"type":"object","additionalProperties":I},"active_proxies":I,"days":{"type":"array","items":ref("DayStat")}},["users","active_users","active_keys","active_proxies","days"]),
 "BroadcastSegment": obj({"language":{"type":"string","enum":["es","en"]},"active_only":B,"plan_id":S}),
 "Broadcast": obj({"id":S,"actor":S,"state":{"type":"string","enum":["queued","running","done","cancelled"]},"segment":ref("BroadcastSegment"),"text":S,"created":T,"finished":T,"sent":I,"blocked":I,"failed":I,"in_flight":I},["id","state","sent","blocked","failed","in_flight"]),
 # requests
 "OpenTicketRequest": obj({"user_id":S,"subject":{"type":"string","maxLength":200},"text":{"type":"string","maxLength":4000}},["user_id","text"]),
 "ReplyRequest": obj({"text":{"type":"string","maxLength":4000},"as_user":{"type":"boolean","description":"relay a message from the ticket's user instead of replying as the operator"}},["text"]),
 "RefundRequest": obj({"refund_id":{"type":"string","description":"reference of a refund made outside the node; not needed for Stars payments"}}),
 "BotTokenRequest": obj({"token":S},["token"]),
 "QvaPayRequest": obj({"app_id":S,"secret":S},["app_id","secret"]),
 "BroadcastRequest": obj({"text":{"type":"string","maxLength":4096},"segment":ref("BroadcastSegment")},["text"]),
 "LoginRequest": obj({"username":S,"password":S,"totp":{"type":"string","description":"When TOTP is enrolled: a current 6-digit code (each accepted code works once) or one of the recovery codes (spent by using it)"}},["username","password"]),
 "PasswordRequest": obj({"current_password":S,"new_password":{"type":"string","minLength":12}},["current_password","new_password"]),
 "TOTPStatus": obj({"enrolled":B,"recovery_left":I,"pending":{"type":"boolean","description":"an enrolment begun by this login awaits its confirmation"}},["enrolled","recovery_left","pending"]),
 "TOTPEnrolment": obj({"secret":{"type":"string","description":"the seed in base32, for typing into an authenticator app"},"uri":{"type":"string","description":"otpauth://totp/… URI"},"qr_png":{"type":"string","format":"byte","description":"PNG of the URI's QR code, base64"},"expires_in":{"type":"integer","description":"seconds left to confirm"}},["secret","uri","qr_png","expires_in"]),
 "TOTPConfirmRequest": obj({"password":S,"code":{"type":"string","description":"a current 6-digit code of the new seed"}},["password","code"]),
 "RecoveryCodes": obj({"recovery_codes":{"type":"array","items":S,"description":"shown once; each lets one login in instead of a TOTP code"}},["recovery_codes"]),
 "RefreshRequest": obj({"refresh_token":S},["refresh_token"]),
 "CreateUserRequest": obj({"telegram_id":I,"username":S,"first_name":S,"last_name":S,"language":S,"referral_code":S}),
 "ReasonRequest": obj({"reason":S}),
 "CreditsRequest": obj({"amount":I,"reason":S},["amount"]),
 "GrantRequest": obj({"plan_id":S,"months":I,"days":I},["plan_id"]),
 "PlanRequest": obj({"name":S,"duration_days":I,"data_cap_bytes":I,"speed_bps":I,"throttle_bps":I,"max_keys":I,"max_conns":I,"protocols":{"type":"array","items":S},"price_stars":I,"price_usd_cents":I,"inactive":B},["name","duration_days","max_keys"]),
 "Limits": obj({"expires_at":T,"data_cap":I,"speed_bps":I,"max_conns":I}),
 "CreateKeyRequest": obj({"user_id":S,"type":{"type":"string","enum":["wireguard","outline"]},"name":S,"trial":B,"grant":{"type":"boolean","description":"outside the plan with limits; needs the admin scope"},"limits":{"type":"object"}},["user_id","type"]),
 "VPNCreateRequest": obj({"user_id":S,"vpn_type":{"type":"string","enum":["wireguard","outline"]},"is_trial":B},["user_id","vpn_type"]),
 "CreateProxyRequest": obj({"user_id":S,"trial":B,"grant":B,"limits":{"type":"object"}},["user_id"]),
 "FreeProxy": obj({"server":S,"port":I,"method":S,"password":S,"remarks":S,"country":{"type":"string","description":"ISO 3166 alpha-2, when the list knows it"},"latency_ms":{"type":"number"},"check":{"type":"string","enum":["shadowsocks","tcp"]},"checked_at":T,"config":ref("ClientConfig")},["server","port","method","password","latency_ms","check","config"]),
 "FreeProxyList": obj({"items":{"type":"array","items":ref("FreeProxy")}},["items"]),
 "CreateAPIKeyRequest": obj({"name":S,"scopes":{"type":"array","items":{"type":"string","enum":["read","write","admin"]}},"expires_at":T},["name","scopes"]),
}
def listof(n):
    return {"type":"object","required":["items","next"],"properties":{"items":{"type":"array","items":ref(n)},"next":{"type":"string","description":"cursor of the next page; empty at the end"}}}
for n in ["User","Plan","Subscription","Key","Proxy","APIKey","CreditEntry","AuditEntry","Payment","Ticket"]:
    schemas[n+"List"]=listof(n)

def problem(code, desc):
    return {"description":desc,"content":{"application/problem+json":{"schema":ref("Problem")}}}
def jsonresp(desc, schema, etag=False):
    r={"description":desc,"content":{"application/json":{"schema":schema}}}
    if etag: r["headers"]={"ETag":{"schema":S}}
    return r
pageParams=[{"$ref":"#/components/parameters/after"},{"$ref":"#/components/parameters/limit"}]
idParam={"$ref":"#/components/parameters/id"}
idemParam={"$ref":"#/components/parameters/idempotencyKey"}
inm={"$ref":"#/components/parameters/ifNoneMatch"}

def op(tag, summary, scope, ok, params=(), body=None, read=False, creates=False, extra=()):
    o={"tags":[tag],"summary":summary,"responses":{}}
    if scope is None:
        o["security"]=[]
    else:
        o["x-scope"]=scope
    ps=list(params)
    if read: ps.append(inm)
    if creates: ps.append(idemParam)
    if ps: o["parameters"]=ps
    if body:
        o["requestBody"]={"required":True,"content":{"application/json":{"schema":ref(body)}}}
    o["responses"].update(ok)
    if read: o["responses"]["304"]={"description":"Not modified (If-None-Match matched the ETag)"}
    errs={"400":"Malformed request","422":"Invalid input","429":"Rate limited (Retry-After)"}
    if scope is not None:
        errs.update({"401":"Missing, invalid, expired or revoked credential","403":"Insufficient scope or not allowed"})
    if scope is not None:
        errs.update({"404":"Not found","409":"Conflict (exists, quota, trial used, state, request in progress)","410":"User erased","415":"Unsupported media type"})
    for e in extra: errs[e]="Error"
    errs["500"]="Internal error"
    for c,d in errs.items():
        o["responses"].setdefault(c, problem(c,d))
    return o

def ok(code, desc, schema, etag=False): return {code: jsonresp(desc, ref(schema) if isinstance(schema,str) else schema, etag)}
nocontent={"204":{"description":"Done"}}
paths={}
def add(path, method, o): paths.setdefault(path,{})[method]=o
v="/api/v1"
add(v+"/health","get",op("node","Liveness of the API",None,ok("200","Alive","Health")))
add(v+"/auth/login","post",op("auth","Admin login: password and TOTP code (when enrolled) → access JWT + refresh token",None,ok("200","Tokens","Tokens"),body="LoginRequest",extra=["401"]))
add(v+"/auth/refresh","post",op("auth","Rotate a refresh token; a reused token revokes its family",None,ok("200","Tokens","Tokens"),body="RefreshRequest",extra=["401"]))
add(v+"/auth/logout","post",op("auth","Revoke a refresh token's family and its access tokens",None,nocontent,body="RefreshRequest",extra=["401"]))
add(v+"/auth/password","post",op("auth","Change the logged-in admin's password (admin login only); the admin's other logins (API and panel) end","admin",nocontent,body="PasswordRequest"))
add(v+"/auth/totp","get",op("auth","The logged-in admin's second factor: enrolled, recovery codes left, an enrolment awaiting confirmation (admin login only)","admin",ok("200","Status","TOTPStatus")))
add(v+"/auth/totp","post",op("auth","Begin a TOTP enrolment (admin login only): a new seed as text, otpauth:// URI and QR code, kept 10 minutes; nothing changes until confirmed","admin",ok("200","Enrolment","TOTPEnrolment")))
add(v+"/auth/totp/confirm","post",op("auth","Confirm the begun enrolment with the password and a code of the new seed: the new factor is in force, the recovery codes are answered once, and the admin's other logins (API and panel) end","admin",ok("200","Recovery codes","RecoveryCodes"),body="TOTPConfirmRequest"))
add(v+"/node/status","get",op("node","Node status","read",ok("200","Status",{"type":"object"},True),read=True))
add(v+"/users","get",op("users","List users (filters: q, banned, erased)","read",ok("200","A page of users","UserList",True),params=pageParams+[
  {"name":"q","in":"query","schema":S,"description":"user id, Telegram id or referral code"},
  {"name":"banned","in":"query","schema":B},{"name":"erased","in":"query","schema":B}],read=True))
add(v+"/users","post",op("users","Register a user","write",ok("201","Created","User"),body="CreateUserRequest",creates=True))
add(v+"/users/{id}","get",op("users","Get a user","read",ok("200","The user","User",True),params=[idParam],read=True))
add(v+"/users/{id}","delete",op("users","Erase a user (GDPR): keys revoked, personal data destroyed","admin",nocontent,params=[idParam]))
add(v+"/users/{id}/ban","post",op("users","Ban a user","write",ok("200","The user","User"),params=[idParam],body=None))
paths[v+"/users/{id}/ban"]["post"]["requestBody"]={"required":False,"content":{"application/json":{"schema":ref("ReasonRequest")}}}
add(v+"/users/{id}/unban","post",op("users","Lift a ban","write",ok("200","The user","User"),params=[idParam]))
add(v+"/users/{id}/export","get",op("users","Export everything stored about a user (GDPR)","admin",ok("200","Export","Export"),params=[idParam]))
add(v+"/users/{id}/balance","get",op("credits","Credit balance","read",ok("200","Balance","Balance",True),params=[idParam],read=True))
add(v+"/users/{id}/credits","get",op("credits","Credit ledger","read",ok("200","A page of entries","CreditEntryList",True),params=[idParam]+pageParams,read=True))
add(v+"/users/{id}/credits","post",op("credits","Add (or spend, negative) credits; Idempotency-Key required","write",ok("201","New balance","Balance"),params=[idParam],body="CreditsRequest",creates=True))
add(v+"/users/{id}/referrals","get",op("referrals","Referral summary","read",ok("200","Summary","Referrals",True),params=[idParam],read=True))
add(v+"/users/{id}/subscriptions","get",op("subscriptions","List a user's subscriptions (filters: status, current)","read",ok("200","A page","SubscriptionList",True),params=[idParam]+pageParams+[
  {"name":"status","in":"query","schema":{"type":"string","enum":["active","cancelled"]},"description":"the subscription record's status"},
  {"name":"current","in":"query","schema":B,"description":"true: grants its plan now (active, started, not expired); false: every other"}],read=True))
add(v+"/users/{id}/subscriptions","post",op("subscriptions","Grant a plan","write",ok("201","Subscription","Subscription"),params=[idParam],body="GrantRequest",creates=True))
add(v+"/plans","get",op("plans","List plans (filters: active, name, protocol)","read",ok("200","A page","PlanList",True),params=pageParams+[
  {"name":"active","in":"query","schema":B,"description":"true: on sale; false: retired"},
  {"name":"name","in":"query","schema":S,"description":"case-insensitive prefix of the plan's name"},
  {"name":"protocol","in":"query","schema":{"type":"string","enum":["wireguard","outline","mtproto"]},"description":"plans that include this protocol"}],read=True))
add(v+"/plans","post",op("plans","Create a plan","admin",ok("201","Plan","Plan"),body="PlanRequest",creates=True))
add(v+"/keys","get",op("keys","List keys (filters: user_id, status)","read",ok("200","A page","KeyList",True),params=pageParams+[
  {"name":"user_id","in":"query","schema":S},{"name":"status","in":"query","schema":{"type":"string","enum":["active","suspended","expired","revoked"]}}],read=True))
add(v+"/keys","post",op("keys","Issue a WireGuard or Outline key","write",ok("201","Key and its client configuration","KeyWithConfig"),body="CreateKeyRequest",creates=True))
add(v+"/keys/{id}","get",op("keys","Get a key","read",ok("200","Key","Key",True),params=[idParam],read=True))
add(v+"/keys/{id}/config","get",op("keys","A key's client configuration","read",ok("200","Config","ClientConfig",True),params=[idParam],read=True))
qr=op("keys","A key's configuration as a QR code (PNG)","read",{"200":{"description":"PNG","headers":{"ETag":{"schema":S}},"content":{"image/png":{"schema":{"type":"string","format":"binary"}}}}},params=[idParam],read=True)
add(v+"/keys/{id}/qr","get",qr)
add(v+"/keys/{id}/rotate","post",op("keys","Replace a key's secret","write",ok("200","Key and new configuration","KeyWithConfig"),params=[idParam]))
add(v+"/keys/{id}/revoke","post",op("keys","Revoke a key","write",ok("200","Key","Key"),params=[idParam]))
paths[v+"/keys/{id}/revoke"]["post"]["requestBody"]={"required":False,"content":{"application/json":{"schema":ref("ReasonRequest")}}}
add(v+"/vpn/create","post",op("keys","The seed's call: create a VPN key for a user","write",ok("201","Key and its client configuration","KeyWithConfig"),body="VPNCreateRequest",creates=True))
add(v+"/proxies","get",op("proxies","List MTProto secrets (filter: user_id)","read",ok("200","A page","ProxyList",True),params=pageParams+[{"name":"user_id","in":"query","schema":S}],read=True))
add(v+"/proxies","post",op("proxies","Issue an MTProto secret","write",ok("201","Secret and its links","KeyWithConfig"),body="CreateProxyRequest",creates=True))
add(v+"/proxies/free","get",op("proxies","Working free Shadowsocks proxies from Shadowmere, checked by the node, fastest first (409 when the node has no --shadowmere-url)","read",ok("200","Proxies with their ss:// URLs","FreeProxyList",True),params=[
  {"name":"country","in":"query","schema":{"type":"string","pattern":"^[A-Za-z]{2}$"},"description":"ISO 3166 alpha-2 code"},
  {"name":"limit","in":"query","schema":{"type":"integer","minimum":1,"maximum":50},"description":"default 10"}],read=True))
add(v+"/proxies/{id}","get",op("proxies","Get an MTProto secret","read",ok("200","Proxy","Proxy",True),params=[idParam],read=True))
add(v+"/proxies/{id}/link","get",op("proxies","tg://proxy and t.me links","read",ok("200","Links","ClientConfig",True),params=[idParam],read=True))
add(v+"/proxies/{id}/revoke","post",op("proxies","Revoke an MTProto secret","write",ok("200","Proxy","Proxy"),params=[idParam]))
paths[v+"/proxies/{id}/revoke"]["post"]["requestBody"]={"required":False,"content":{"application/json":{"schema":ref("ReasonRequest")}}}
add(v+"/apikeys","get",op("apikeys","List API keys (filters: scope, status)","admin",ok("200","A page","APIKeyList",True),params=pageParams+[
  {"name":"scope","in":"query","schema":{"type":"string","enum":["read","write","admin"]},"description":"keys holding this scope"},
  {"name":"status","in":"query","schema":{"type":"string","enum":["active","revoked","expired"]},"description":"active: neither revoked nor expired; revoked; expired: past expires_at and not revoked"}],read=True))
add(v+"/apikeys","post",op("apikeys","Create an API key (the token is shown once)","admin",ok("201","Key and token","NewAPIKey"),body="CreateAPIKeyRequest",creates=True))
add(v+"/apikeys/{id}","delete",op("apikeys","Revoke an API key","admin",nocontent,params=[idParam]))
add(v+"/audit","get",op("audit","Audit log, newest first (filters: user_id, action with user_id)","admin",ok("200","A page","AuditEntryList",True),params=pageParams+[{"name":"user_id","in":"query","schema":S},{"name":"action","in":"query","schema":S}],read=True))
add(v+"/stats","get",op("stats","Users, active keys and, per UTC day, revenue, traffic and new users","read",ok("200","Stats","Stats",True),params=[{"name":"days","in":"query","schema":{"type":"integer","minimum":1,"maximum":366},"description":"days in the series, today included (default 30)"}],read=True))
add(v+"/plans/{id}","get",op("plans","Get a plan","read",ok("200","Plan","Plan",True),params=[idParam],read=True))
add(v+"/plans/{id}","put",op("plans","Replace a plan (prices, limits, inactive to retire it)","admin",ok("200","Plan","Plan"),params=[idParam],body="PlanRequest"))
add(v+"/payments","get",op("payments","List payments: a user's newest first, or all (filters: user_id, status, provider)","admin",ok("200","A page","PaymentList",True),params=pageParams+[
  {"name":"user_id","in":"query","schema":S},{"name":"status","in":"query","schema":{"type":"string","enum":["pending","paid","refunded","failed","expired"]}},{"name":"provider","in":"query","schema":S}],read=True))
add(v+"/payments/{id}","get",op("payments","Get a payment","admin",ok("200","Payment","Payment",True),params=[idParam],read=True))
add(v+"/payments/{id}/refund","post",op("payments","Refund a payment (Stars through Telegram; others record a refund_id) and reverse its grant","admin",ok("200","The refunded payment","Payment"),params=[idParam],extra=["502","503"]))
paths[v+"/payments/{id}/refund"]["post"]["requestBody"]={"required":False,"content":{"application/json":{"schema":ref("RefundRequest")}}}
ticketStatus={"name":"status","in":"query","schema":{"type":"string","enum":["open","closed"]},"description":"default open; ignored with user_id"}
add(v+"/tickets","get",op("tickets","List tickets by status, or a user's","read",ok("200","A page","TicketList",True),params=pageParams+[ticketStatus,{"name":"user_id","in":"query","schema":S}],read=True))
add(v+"/tickets","post",op("tickets","Open a ticket for a user","write",ok("201","Ticket","Ticket"),body="OpenTicketRequest",creates=True))
add(v+"/tickets/{id}","get",op("tickets","Get a ticket","read",ok("200","Ticket","Ticket",True),params=[idParam],read=True))
add(v+"/tickets/{id}/replies","post",op("tickets","Reply to a ticket (as the operator, or relaying the user)","write",ok("201","Ticket","Ticket"),params=[idParam],body="ReplyRequest",creates=True))
add(v+"/tickets/{id}/close","post",op("tickets","Close a ticket","write",ok("200","Ticket","Ticket"),params=[idParam]))
add(v+"/tickets/{id}/reopen","post",op("tickets","Reopen a ticket","write",ok("200","Ticket","Ticket"),params=[idParam]))
add(v+"/broadcasts","post",op("broadcasts","Queue a message to a segment of users","admin",{"202":jsonresp("Queued",ref("Broadcast"))},body="BroadcastRequest",creates=True,extra=["503"]))
add(v+"/broadcasts/{id}","get",op("broadcasts","A broadcast's progress","admin",ok("200","Broadcast","Broadcast",True),params=[idParam],read=True,extra=["503"]))
add(v+"/settings","get",op("settings","Policy, catalogue, and which write-only secrets are set","admin",ok("200","Settings","Settings",True),read=True))
add(v+"/settings/policy","put",op("settings","Replace the policy (trials, referral credits, defaults)","admin",ok("200","Policy","Policy"),body="Policy"))
add(v+"/settings/catalogue","put",op("settings","Replace the catalogue (packages, discounts, anti-fraud rules)","admin",ok("200","Catalogue","Catalogue"),body="Catalogue",extra=["503"]))
add(v+"/settings/bot-token","put",op("settings","Set the Telegram bot token (write-only; used from the next start when --bot-token is not given)","admin",nocontent,body="BotTokenRequest"))
add(v+"/settings/qvapay","put",op("settings","Set the QvaPay app id and secret (write-only)","admin",nocontent,body="QvaPayRequest",extra=["503"]))
add("/api/openapi.json","get",op("docs","This document",None,{"200":{"description":"OpenAPI 3 document","content":{"application/json":{"schema":{"type":"object"}}}}}))
add("/api/docs","get",op("docs","Docs page",None,{"200":{"description":"HTML","content":{"text/html":{"schema":S}}}}))
add("/api/docs/docs.js","get",op("docs","Docs page script",None,{"200":{"description":"JavaScript","content":{"text/javascript":{"schema":S}}}}))

spec={"openapi":"3.0.3","info":{"title":"usipipo","version":"1.0.0","description":"REST API of a usipipo node. Authenticate with an access JWT from /api/v1/auth/login or an API key (usp_…), both as 'Authorization: Bearer …'. Scopes: read < write < admin. Lists use cursor pagination (?after=&limit=, next in the body); reads carry an ETag; creating calls accept an Idempotency-Key. Errors are RFC 9457 problem JSON."},
 "servers":[{"url":"/"}],
 "security":[{"bearer":[]}],
 "paths":paths,
 "components":{"securitySchemes":{"bearer":{"type":"http","scheme":"bearer","description":"access JWT (EdDSA) or API key usp_…"}},
  "parameters":{
   "id":{"name":"id","in":"path","required":True,"schema":S},
   "after":{"name":"after","in":"query","schema":S,"description":"cursor from the previous page's next"},
   "limit":{"name":"limit","in":"query","schema":{"type":"integer","minimum":1,"maximum":500}},
   "idempotencyKey":{"name":"Idempotency-Key","in":"header","schema":{"type":"string","maxLength":200}},
   "ifNoneMatch":{"name":"If-None-Match","in":"header","schema":S}},
  "schemas":schemas}}
json.dump(spec, open(os.path.join(os.path.dirname(os.path.abspath(__file__)),"openapi.json"),"w"), indent=1, sort_keys=True)
