/*
 * crypt(3) from the system's libcrypt (libxcrypt on Debian) for the agent's password workers:
 * SHA-512 crypt natively costs ~1/7 of the CPU of sdk/password.ts's node:crypto version, whose
 * every round pays a call into OpenSSL. Called only from worker threads (password-worker.ts), so
 * it is synchronous; crypt_rn keeps all state in the caller's buffer, which is wiped afterwards.
 */
#define NAPI_VERSION 8
#include <crypt.h>
#include <node_api.h>
#include <stdlib.h>
#include <string.h>

static napi_value fail(napi_env env, const char *message) {
  napi_throw_error(env, NULL, message);
  return NULL;
}

/* Copy a JS string as UTF-8 into `buffer`; fails when it does not fit or holds a NUL byte. */
static int read_utf8(napi_env env, napi_value value, char *buffer, size_t size) {
  size_t length;
  if (napi_get_value_string_utf8(env, value, NULL, 0, &length) != napi_ok || length >= size) return -1;
  if (napi_get_value_string_utf8(env, value, buffer, size, &length) != napi_ok) return -1;
  return strlen(buffer) == length ? 0 : -1;
}

/* crypt(phrase, setting): the hash string, or a thrown error (never echoing the phrase). */
static napi_value crypt_js(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 2) {
    return fail(env, "crypt(phrase, setting) takes two strings");
  }
  struct crypt_data *data = calloc(1, sizeof *data);
  if (data == NULL) return fail(env, "crypt: out of memory");
  napi_value result = NULL;
  if (read_utf8(env, argv[0], data->input, sizeof data->input) != 0) {
    fail(env, "crypt: the passphrase must be a string of at most 511 UTF-8 bytes without NUL");
  } else if (read_utf8(env, argv[1], data->setting, sizeof data->setting) != 0) {
    fail(env, "crypt: the setting must be a string without NUL");
  } else {
    const char *hash = crypt_rn(data->input, data->setting, data, sizeof *data);
    if (hash == NULL || hash[0] == '*') {
      fail(env, "crypt: the setting was rejected");
    } else {
      napi_create_string_utf8(env, hash, NAPI_AUTO_LENGTH, &result);
    }
  }
  explicit_bzero(data, sizeof *data);
  free(data);
  return result;
}

NAPI_MODULE_INIT() {
  napi_value fn;
  if (napi_create_function(env, "crypt", NAPI_AUTO_LENGTH, crypt_js, NULL, &fn) != napi_ok) return NULL;
  if (napi_set_named_property(env, exports, "crypt", fn) != napi_ok) return NULL;
  return exports;
}
