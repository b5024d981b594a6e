/* The kit's example plugin (the same one in every language): RCPT refuses
 * recipients whose local part starts with `trap`, DATA counts messages in
 * the plugin's kv store and stamps each with `X-Kit: c; messages=N`.
 * Made with `ferrymail plugin new example --lang c --hooks rcpt,data`,
 * then this file replaced plugin.c. MEMORY.md explains every free below.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "plugin.h"

/* A reply the host reads and the bindings free after the call returns:
 * every string in it must come from malloc (plugin_string_dup). */
static void set_reply(ferrymail_plugin_types_reply_t *r, uint16_t code, const char *enhanced, const char *text) {
    r->code = code;
    r->enhanced.is_some = true;
    plugin_string_dup(&r->enhanced.val, enhanced);
    plugin_string_dup(&r->text, text);
}

void exports_ferrymail_plugin_rcpt_on_rcpt(exports_ferrymail_plugin_rcpt_session_t *s,
        exports_ferrymail_plugin_rcpt_envelope_t *env, plugin_string_t *rcpt,
        exports_ferrymail_plugin_rcpt_verdict_t *ret) {
    /* WIT strings are UTF-8 with a length, not NUL-terminated. */
    bool trap = rcpt->len >= 4 && strncasecmp((const char *)rcpt->ptr, "trap", 4) == 0;
    if (trap) {
        ret->tag = FERRYMAIL_PLUGIN_TYPES_VERDICT_REJECT;
        set_reply(&ret->val.reject, 550, "5.7.1", "No spamtraps here");
    } else {
        /* "No opinion": the next plugin in the chain (e.g. `local`) decides. */
        ret->tag = FERRYMAIL_PLUGIN_TYPES_VERDICT_CONTINUE;
    }
    /* The arguments are ours: free them (the instance is reused, a leak
     * per call would grow until the sandbox's memory cap). */
    ferrymail_plugin_types_session_free(s);
    ferrymail_plugin_types_envelope_free(env);
    plugin_string_free(rcpt);
}

void exports_ferrymail_plugin_data_on_data(exports_ferrymail_plugin_data_session_t *s,
        exports_ferrymail_plugin_data_envelope_t *env, exports_ferrymail_plugin_data_borrow_message_t msg,
        exports_ferrymail_plugin_data_data_result_t *ret) {
    plugin_string_t key;
    plugin_string_set(&key, "messages"); /* an argument we pass: borrowed, a literal is fine */
    int64_t count = 0;
    ferrymail_plugin_kv_host_error_t err;
    char value[64];
    if (ferrymail_plugin_kv_incr(&key, 1, NULL, &count, &err)) {
        snprintf(value, sizeof value, "c; messages=%lld", (long long)count);
    } else {
        /* A kv failure (not granted, store slow) must not refuse mail. */
        ferrymail_plugin_kv_host_error_free(&err);
        snprintf(value, sizeof value, "c; messages=?");
    }

    ret->verdict.tag = FERRYMAIL_PLUGIN_TYPES_VERDICT_CONTINUE;
    ret->add_headers.len = 1;
    ret->add_headers.ptr = malloc(sizeof(ferrymail_plugin_types_header_t));
    plugin_string_dup(&ret->add_headers.ptr[0].name, "X-Kit");
    plugin_string_dup(&ret->add_headers.ptr[0].value, value);

    ferrymail_plugin_types_session_free(s);
    ferrymail_plugin_types_envelope_free(env);
    /* msg is lent for this call only: the bindings give it back when this
     * returns (never keep it). */
}
