/*
 * Logging for the Pitstop daemons and tools: one line per message on stderr
 * (journald adds the time) or, when a log file is configured, to that file
 * with a UTC timestamp. Levels are checked before any formatting happens, so
 * a disabled debug line costs one comparison.
 *
 * Never log secrets, keys or whole payloads; VINs and positions only at
 * LOG_LEVEL_DEBUG.
 */
#ifndef PITSTOP_LOG_H
#define PITSTOP_LOG_H

#include <stddef.h>

enum log_level {
	LOG_LEVEL_ERROR = 0,
	LOG_LEVEL_WARN = 1,
	LOG_LEVEL_INFO = 2,
	LOG_LEVEL_DEBUG = 3,
};

/* The current threshold; messages above it are dropped unformatted. */
extern enum log_level log_threshold;

/*
 * Sets the program name printed on each line and the threshold. ident is
 * borrowed and must outlive logging. Safe to call again.
 */
void log_init(const char *ident, enum log_level level);

/*
 * Sends output to path (appended) instead of stderr. Returns 0 or -errno;
 * on failure output stays where it was.
 */
int log_open_file(const char *path);

/* Parses "error", "warn", "info" or "debug". Returns the level or -EINVAL. */
int log_level_parse(const char *name);

/* config_check_fn for a log_level option: one of the names above. */
int log_level_check(const char *value, char *msg, size_t msglen);

void log_write(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_at(lvl, ...)                               \
	do {                                           \
		if ((lvl) <= log_threshold)            \
			log_write((lvl), __VA_ARGS__); \
	} while (0)
#define log_error(...) log_at(LOG_LEVEL_ERROR, __VA_ARGS__)
#define log_warn(...) log_at(LOG_LEVEL_WARN, __VA_ARGS__)
#define log_info(...) log_at(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_debug(...) log_at(LOG_LEVEL_DEBUG, __VA_ARGS__)

#endif
