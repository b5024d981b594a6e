//! The hooks a new project can implement, and each one's stub per language.
//! A stub answers "no opinion" (continue / none), as the SDK's defaults do.

/// A hook as named on the command line: one WIT interface each
/// (`events` holds both delivery events).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum Hook {
    Connect,
    Helo,
    Auth,
    Mail,
    Rcpt,
    Data,
    Vrfy,
    Expn,
    Route,
    Retry,
    Events,
}

impl Hook {
    /// The WIT interface (in `ferrymail:plugin`) the hook is exported as.
    pub fn interface(self) -> &'static str {
        match self {
            Hook::Connect => "connect",
            Hook::Helo => "helo",
            Hook::Auth => "auth",
            Hook::Mail => "mail",
            Hook::Rcpt => "rcpt",
            Hook::Data => "data",
            Hook::Vrfy => "vrfy",
            Hook::Expn => "expn",
            Hook::Route => "route",
            Hook::Retry => "retry",
            Hook::Events => "events",
        }
    }

    /// Methods of `impl Plugin` (Rust SDK).
    pub fn rust_stub(self) -> &'static str {
        match self {
            Hook::Connect => {
                "    fn connect(&self, _session: &Session) -> Verdict {\n        Verdict::Continue\n    }\n"
            }
            Hook::Helo => {
                "    fn helo(&self, _session: &Session, _name: &str, _ehlo: bool) -> Verdict {\n        Verdict::Continue\n    }\n"
            }
            Hook::Auth => {
                "    fn auth(&self, _request: &AuthRequest) -> AuthResult {\n        AuthResult::Continue\n    }\n"
            }
            Hook::Mail => {
                "    fn mail(&self, _session: &Session, _sender: &str) -> Verdict {\n        Verdict::Continue\n    }\n"
            }
            Hook::Rcpt => {
                "    fn rcpt(&self, _session: &Session, _envelope: &Envelope, _rcpt: &str) -> Verdict {\n        Verdict::Continue\n    }\n"
            }
            Hook::Data => {
                "    fn data(&self, _session: &Session, _envelope: &Envelope, _message: &Message) -> DataResult {\n        DataResult { verdict: Verdict::Continue, add_headers: Vec::new() }\n    }\n"
            }
            Hook::Vrfy => {
                "    fn vrfy(&self, _session: &Session, _arg: &str) -> Option<Reply> {\n        None\n    }\n"
            }
            Hook::Expn => {
                "    fn expn(&self, _session: &Session, _arg: &str) -> Option<Reply> {\n        None\n    }\n"
            }
            Hook::Route => "    fn route(&self, _ctx: &RouteContext) -> Option<Destination> {\n        None\n    }\n",
            Hook::Retry => "    fn retry(&self, _ctx: &RetryContext) -> Option<RetryDecision> {\n        None\n    }\n",
            Hook::Events => {
                "    fn delivered(&self, _event: &DeliveryEvent) {}\n    fn bounced(&self, _event: &DeliveryEvent) {}\n"
            }
        }
    }

    /// A class of `wit_world.exports` (componentize-py).
    pub fn python_stub(self) -> &'static str {
        match self {
            Hook::Connect => {
                "class Connect(exports.Connect):\n    def on_connect(self, s: Session) -> Verdict:\n        return fm.CONTINUE\n"
            }
            Hook::Helo => {
                "class Helo(exports.Helo):\n    def on_helo(self, s: Session, name: str, ehlo: bool) -> Verdict:\n        return fm.CONTINUE\n"
            }
            Hook::Auth => {
                "class Auth(exports.Auth):\n    def on_auth(self, req: AuthRequest) -> AuthResult:\n        return fm.AUTH_CONTINUE\n"
            }
            Hook::Mail => {
                "class Mail(exports.Mail):\n    def on_mail(self, s: Session, sender: str) -> Verdict:\n        return fm.CONTINUE\n"
            }
            Hook::Rcpt => {
                "class Rcpt(exports.Rcpt):\n    def on_rcpt(self, s: Session, env: Envelope, rcpt: str) -> Verdict:\n        return fm.CONTINUE\n"
            }
            Hook::Data => {
                "class Data(exports.Data):\n    def on_data(self, s: Session, env: Envelope, msg: Message) -> DataResult:\n        return fm.data_result(fm.CONTINUE)\n"
            }
            Hook::Vrfy => {
                "class Vrfy(exports.Vrfy):\n    def on_vrfy(self, s: Session, arg: str) -> Optional[Reply]:\n        return None\n"
            }
            Hook::Expn => {
                "class Expn(exports.Expn):\n    def on_expn(self, s: Session, arg: str) -> Optional[Reply]:\n        return None\n"
            }
            Hook::Route => {
                "class Route(exports.Route):\n    def on_route(self, ctx: RouteContext) -> Optional[Destination]:\n        return None\n"
            }
            Hook::Retry => {
                "class Retry(exports.Retry):\n    def on_retry(self, ctx: RetryContext) -> Optional[RetryDecision]:\n        return None\n"
            }
            Hook::Events => {
                "class Events(exports.Events):\n    def on_delivered(self, ev: DeliveryEvent) -> None:\n        pass\n\n    def on_bounced(self, ev: DeliveryEvent) -> None:\n        pass\n"
            }
        }
    }

    /// An exported object of the ES module (componentize-js).
    pub fn js_stub(self) -> &'static str {
        match self {
            Hook::Connect => "export const connect = {\n  onConnect(session) {\n    return CONTINUE;\n  },\n};\n",
            Hook::Helo => "export const helo = {\n  onHelo(session, name, ehlo) {\n    return CONTINUE;\n  },\n};\n",
            Hook::Auth => "export const auth = {\n  onAuth(request) {\n    return { tag: 'continue' };\n  },\n};\n",
            Hook::Mail => "export const mail = {\n  onMail(session, sender) {\n    return CONTINUE;\n  },\n};\n",
            Hook::Rcpt => {
                "export const rcpt = {\n  onRcpt(session, envelope, rcpt) {\n    return CONTINUE;\n  },\n};\n"
            }
            Hook::Data => {
                "export const data = {\n  onData(session, envelope, message) {\n    return dataResult(CONTINUE, []);\n  },\n};\n"
            }
            Hook::Vrfy => "export const vrfy = {\n  onVrfy(session, arg) {\n    return undefined;\n  },\n};\n",
            Hook::Expn => "export const expn = {\n  onExpn(session, arg) {\n    return undefined;\n  },\n};\n",
            Hook::Route => "export const route = {\n  onRoute(ctx) {\n    return undefined;\n  },\n};\n",
            Hook::Retry => "export const retry = {\n  onRetry(ctx) {\n    return undefined;\n  },\n};\n",
            Hook::Events => "export const events = {\n  onDelivered(event) {},\n  onBounced(event) {},\n};\n",
        }
    }

    /// Exported functions of the wit-bindgen C bindings (world `plugin`).
    /// Each frees the arguments it owns (MEMORY.md): the instance is reused,
    /// so a leak per call grows until the sandbox's memory cap.
    pub fn c_stub(self) -> &'static str {
        match self {
            Hook::Connect => {
                "void exports_ferrymail_plugin_connect_on_connect(exports_ferrymail_plugin_connect_session_t *s,\n        exports_ferrymail_plugin_connect_verdict_t *ret) {\n    ferrymail_plugin_types_session_free(s);\n    ret->tag = FERRYMAIL_PLUGIN_TYPES_VERDICT_CONTINUE;\n}\n"
            }
            Hook::Helo => {
                "void exports_ferrymail_plugin_helo_on_helo(exports_ferrymail_plugin_helo_session_t *s, plugin_string_t *name,\n        bool ehlo, exports_ferrymail_plugin_helo_verdict_t *ret) {\n    ferrymail_plugin_types_session_free(s);\n    plugin_string_free(name);\n    ret->tag = FERRYMAIL_PLUGIN_TYPES_VERDICT_CONTINUE;\n}\n"
            }
            Hook::Auth => {
                "void exports_ferrymail_plugin_auth_on_auth(exports_ferrymail_plugin_auth_auth_request_t *req,\n        exports_ferrymail_plugin_auth_auth_result_t *ret) {\n    ferrymail_plugin_types_auth_request_free(req);\n    ret->tag = FERRYMAIL_PLUGIN_TYPES_AUTH_RESULT_CONTINUE;\n}\n"
            }
            Hook::Mail => {
                "void exports_ferrymail_plugin_mail_on_mail(exports_ferrymail_plugin_mail_session_t *s, plugin_string_t *sender,\n        exports_ferrymail_plugin_mail_verdict_t *ret) {\n    ferrymail_plugin_types_session_free(s);\n    plugin_string_free(sender);\n    ret->tag = FERRYMAIL_PLUGIN_TYPES_VERDICT_CONTINUE;\n}\n"
            }
            Hook::Rcpt => {
                "void exports_ferrymail_plugin_rcpt_on_rcpt(exports_ferrymail_plugin_rcpt_session_t *s,\n        exports_ferrymail_plugin_rcpt_envelope_t *env, plugin_string_t *rcpt,\n        exports_ferrymail_plugin_rcpt_verdict_t *ret) {\n    ferrymail_plugin_types_session_free(s);\n    ferrymail_plugin_types_envelope_free(env);\n    plugin_string_free(rcpt);\n    ret->tag = FERRYMAIL_PLUGIN_TYPES_VERDICT_CONTINUE;\n}\n"
            }
            Hook::Data => {
                "void exports_ferrymail_plugin_data_on_data(exports_ferrymail_plugin_data_session_t *s,\n        exports_ferrymail_plugin_data_envelope_t *env, exports_ferrymail_plugin_data_borrow_message_t msg,\n        exports_ferrymail_plugin_data_data_result_t *ret) {\n    ferrymail_plugin_types_session_free(s);\n    ferrymail_plugin_types_envelope_free(env);\n    /* msg is lent for this call only; the bindings give it back when\n       this returns (MEMORY.md). */\n    ret->verdict.tag = FERRYMAIL_PLUGIN_TYPES_VERDICT_CONTINUE;\n    ret->add_headers.ptr = NULL;\n    ret->add_headers.len = 0;\n}\n"
            }
            Hook::Vrfy => {
                "bool exports_ferrymail_plugin_vrfy_on_vrfy(exports_ferrymail_plugin_vrfy_session_t *s, plugin_string_t *arg,\n        exports_ferrymail_plugin_vrfy_reply_t *ret) {\n    ferrymail_plugin_types_session_free(s);\n    plugin_string_free(arg);\n    return false; /* none: ask the next plugin */\n}\n"
            }
            Hook::Expn => {
                "bool exports_ferrymail_plugin_expn_on_expn(exports_ferrymail_plugin_expn_session_t *s, plugin_string_t *arg,\n        exports_ferrymail_plugin_expn_reply_t *ret) {\n    ferrymail_plugin_types_session_free(s);\n    plugin_string_free(arg);\n    return false; /* none: ask the next plugin */\n}\n"
            }
            Hook::Route => {
                "bool exports_ferrymail_plugin_route_on_route(exports_ferrymail_plugin_route_route_context_t *ctx,\n        exports_ferrymail_plugin_route_destination_t *ret) {\n    ferrymail_plugin_types_route_context_free(ctx);\n    return false; /* none: ask the next plugin */\n}\n"
            }
            Hook::Retry => {
                "bool exports_ferrymail_plugin_retry_on_retry(exports_ferrymail_plugin_retry_retry_context_t *ctx,\n        exports_ferrymail_plugin_retry_retry_decision_t *ret) {\n    ferrymail_plugin_types_retry_context_free(ctx);\n    return false; /* none: ask the next plugin */\n}\n"
            }
            Hook::Events => {
                "void exports_ferrymail_plugin_events_on_delivered(exports_ferrymail_plugin_events_delivery_event_t *ev) {\n    ferrymail_plugin_types_delivery_event_free(ev);\n}\n\nvoid exports_ferrymail_plugin_events_on_bounced(exports_ferrymail_plugin_events_delivery_event_t *ev) {\n    ferrymail_plugin_types_delivery_event_free(ev);\n}\n"
            }
        }
    }
}
