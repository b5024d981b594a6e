// Helpers for ferrymail plugins written in JavaScript (componentize-js),
// shipped with every project `ferrymail plugin new --lang js` makes.
//
// The bindings follow the component model's JS mapping: a WIT variant is
// `{ tag, val }`, a record an object with camelCase fields, option<T> is
// the value or `undefined`, and a result<T, host-error> returns T or
// throws (the error's `payload` is the host-error). Plain code; read it.

import { log as hostLog, config as hostConfig, now } from 'ferrymail:plugin/host@0.1.0';
import { get, set, incr, delete as del } from 'ferrymail:plugin/kv@0.1.0';

/** No opinion: the next plugin in the chain decides. */
export const CONTINUE = { tag: 'continue' };
/** Yes; ends the chain. */
export const ACCEPT = { tag: 'accept' };

/** An SMTP reply: code, RFC 3463 enhanced code ("5.7.1" or undefined), text. */
export function reply(code, enhanced, text) {
  return { code, enhanced: enhanced || undefined, text };
}
/** A permanent refusal (5xx). */
export function reject(code = 550, enhanced = '5.7.1', text = 'Refused') {
  return { tag: 'reject', val: reply(code, enhanced, text) };
}
/** A temporary refusal (4xx). */
export function tempfail(code = 451, enhanced = '4.7.1', text = 'Try again later') {
  return { tag: 'tempfail', val: reply(code, enhanced, text) };
}
/** Send the reply and close the connection. */
export function disconnect(code = 421, enhanced = '4.7.0', text = 'Closing') {
  return { tag: 'disconnect', val: reply(code, enhanced, text) };
}

/** The data hook's answer; `headers` is an object or [name, value] pairs. */
export function dataResult(verdict = CONTINUE, headers = []) {
  const pairs = Array.isArray(headers) ? headers : Object.entries(headers);
  return { verdict, addHeaders: pairs.map(([name, value]) => ({ name, value: String(value) })) };
}

/** Log levels: 'trace', 'debug', 'info', 'warn', 'error'. */
export function log(message, level = 'info') {
  hostLog(level, String(message));
}

/** This plugin's config for the tenant being served ({} when none). */
export function config() {
  try {
    const value = JSON.parse(hostConfig());
    return value && typeof value === 'object' ? value : {};
  } catch {
    return {};
  }
}

/** Wall-clock time, milliseconds since the Unix epoch (a BigInt). */
export function nowMs() {
  return now();
}

// kv: every call can fail (not granted, store timeout) and the binding
// throws. These return undefined instead and log why, so the plugin
// decides what a missing answer means rather than trapping.
function kvError(op, key, e) {
  hostLog('warn', `kv ${op} ${key}: ${JSON.stringify(e && e.payload !== undefined ? e.payload : String(e))}`);
}

/** The value (Uint8Array), or undefined when absent, expired or on error. */
export function kvGet(key) {
  try {
    return get(key);
  } catch (e) {
    kvError('get', key, e);
    return undefined;
  }
}
/** Store a value (a string is UTF-8 encoded); ttlSecs a number or undefined. */
export function kvSet(key, value, ttlSecs) {
  const bytes = typeof value === 'string' ? new TextEncoder().encode(value) : value;
  try {
    set(key, bytes, ttlSecs === undefined ? undefined : BigInt(ttlSecs));
    return true;
  } catch (e) {
    kvError('set', key, e);
    return false;
  }
}
/** Add delta to the counter at key; the new value (a BigInt), or undefined on error. */
export function kvIncr(key, delta = 1, ttlSecs) {
  try {
    return incr(key, BigInt(delta), ttlSecs === undefined ? undefined : BigInt(ttlSecs));
  } catch (e) {
    kvError('incr', key, e);
    return undefined;
  }
}
export function kvDelete(key) {
  try {
    del(key);
    return true;
  } catch (e) {
    kvError('delete', key, e);
    return false;
  }
}
