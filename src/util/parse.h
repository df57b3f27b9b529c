/*
 * parse.h — typed value parsers shared by the spec, CLI and API.
 * All return 0 on success, -1 on a malformed value (out untouched).
 */
#ifndef GANTRY_UTIL_PARSE_H
#define GANTRY_UTIL_PARSE_H
#include "common.h"

/*
 * "250ms", "90s", "10m", "2h", "1d", "1m30s", "1.5m" (= 90s). Units ms s m h d,
 * each at most once. A bare number is rejected (is "10" seconds or ms?),
 * except "0". A fraction finer than 1ms, a sign or whitespace is rejected.
 */
int parse_duration_ms(const char *s, int64_t *out_ms);
/* "256Mi", "1Gi", "512M", "1024", "64k"/"64K" -> bytes (k K M G T = 1000^n,
 * Ki Mi Gi Ti = 1024^n); fractions round down to a whole byte ("1.5Ki" = 1536) */
int parse_size(const char *s, int64_t *out_bytes);
/* "500m" -> 500, "2" -> 2000, "0.5" -> 500; finer than 1m is rejected */
int parse_cpu_millis(const char *s, int64_t *out_millis);
/* "0.1%" -> 0.1, "25%" -> 25 (requires the % sign; no sign, no space) */
int parse_percent(const char *s, double *out);
/* formats ms as "1m30s", "250ms" into buf */
const char *format_duration(int64_t ms, char *buf, size_t len);
/* the value of a YAML single-quoted scalar's content raw[0..len), owned */
char *yaml_single_quoted(const char *raw, size_t len);
/* length of the valid UTF-8 sequence at s (at most n bytes), 0 when invalid */
size_t utf8_seq_len(const unsigned char *s, size_t n);

#endif
