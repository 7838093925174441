// SPDX-License-Identifier: MIT
/* test_isotime.c - the one ISO 8601 formatter and parser (common/isotime.c). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "ckptfs/isotime.h"

/* 2024-12-13T14:35:07Z */
#define T0 1734100507LL

static void test_format_styles(void **state)
{
	char b[CKPT_ISO_LEN];
	int64_t ns = T0 * CKPT_NS_PER_S + 123456789;

	(void)state;
	assert_string_equal(ckpt_iso_format(b, sizeof(b), ns, CKPT_ISO_S), "2024-12-13T14:35:07Z");
	assert_string_equal(ckpt_iso_format(b, sizeof(b), ns, CKPT_ISO_MS),
			    "2024-12-13T14:35:07.123Z");
	assert_string_equal(ckpt_iso_format(b, sizeof(b), ns, CKPT_ISO_HUMAN),
			    "2024-12-13 14:35:07 UTC");
	assert_string_equal(ckpt_iso_format(b, sizeof(b), ns, CKPT_ISO_ID), "20241213_143507");
	assert_string_equal(ckpt_iso_format(b, sizeof(b), 0, CKPT_ISO_S), "1970-01-01T00:00:00Z");
	/* before the epoch: floor, not truncation toward zero */
	assert_string_equal(ckpt_iso_format(b, sizeof(b), -1, CKPT_ISO_MS),
			    "1969-12-31T23:59:59.999Z");
	/* a short buffer is truncated and terminated */
	assert_string_equal(ckpt_iso_format(b, 5, ns, CKPT_ISO_S), "2024");
}

static void test_ns_from_double(void **state)
{
	char b[CKPT_ISO_LEN];

	(void)state;
	/* .999 s kept in a double must not print as .998 */
	assert_string_equal(
		ckpt_iso_format(b, sizeof(b), ckpt_iso_ns((double)T0 + 0.999), CKPT_ISO_MS),
		"2024-12-13T14:35:07.999Z");
	assert_int_equal(ckpt_iso_ns(1.5), 1500000000LL);
	assert_int_equal(ckpt_iso_ns(-1.5), -1500000000LL);
}

static void test_parse_forms(void **state)
{
	int64_t ns;

	(void)state;
	assert_int_equal(ckpt_iso_parse("2024-12-13T14:35:07Z", &ns), 0);
	assert_int_equal(ns, T0 * CKPT_NS_PER_S);
	assert_int_equal(ckpt_iso_parse("2024-12-13T14:35:07.5Z", &ns), 0);
	assert_int_equal(ns, T0 * CKPT_NS_PER_S + 500000000);
	assert_int_equal(ckpt_iso_parse("2024-12-13T14:35:07.123456789123Z", &ns), 0);
	assert_int_equal(ns, T0 * CKPT_NS_PER_S + 123456789);
	assert_int_equal(ckpt_iso_parse("2024-12-13 14:35:07 UTC", &ns), 0);
	assert_int_equal(ns, T0 * CKPT_NS_PER_S);
	assert_int_equal(ckpt_iso_parse("2024-12-13T14:35:07", &ns), 0);
	assert_int_equal(ns, T0 * CKPT_NS_PER_S);
	assert_int_equal(ckpt_iso_parse("2024-12-13T14:35:07+00:00", &ns), 0);
	assert_int_equal(ns, T0 * CKPT_NS_PER_S);
	assert_int_equal(ckpt_iso_parse("2024-12-13T16:35:07+02:00", &ns), 0);
	assert_int_equal(ns, T0 * CKPT_NS_PER_S);
	assert_int_equal(ckpt_iso_parse("2024-12-13T09:05:07-05:30", &ns), 0);
	assert_int_equal(ns, T0 * CKPT_NS_PER_S);
	assert_int_equal(ckpt_iso_parse("2024-02-29T00:00:00Z", &ns), 0);
}

static void test_parse_rejects(void **state)
{
	static const char *bad[] = {
		"",
		"yesterday",
		"2024-12-13",
		"2024-12-13T14:35",
		"2024-12-13T14:35:07Zjunk",
		"2024-12-13T14:35:07 GMT",
		"2024-13-01T00:00:00Z",
		"2024-00-01T00:00:00Z",
		"2023-02-29T00:00:00Z",
		"2024-04-31T00:00:00Z",
		"2024-12-13T24:00:00Z",
		"2024-12-13T14:60:00Z",
		"2024-12-13T14:35:61Z",
		"2024-12-13T14:35:07.Z",
		"2024-12-13T14:35:07+0200",
		" 2024-12-13T14:35:07Z",
		"24-12-13T14:35:07Z",
	};
	int64_t ns = 42;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (ckpt_iso_parse(bad[i], &ns) != -EINVAL)
			fail_msg("accepted '%s'", bad[i]);
	}
	assert_int_equal(ckpt_iso_parse(NULL, &ns), -EINVAL);
	assert_int_equal(ns, 42);
}

/* What any style but ID writes, the parser reads back (to its precision). */
static void test_round_trip(void **state)
{
	static const enum ckpt_iso_style st[] = {CKPT_ISO_S, CKPT_ISO_MS, CKPT_ISO_HUMAN};
	static const int64_t prec[] = {CKPT_NS_PER_S, 1000000, CKPT_NS_PER_S};
	char b[CKPT_ISO_LEN];
	int64_t back;

	(void)state;
	for (int64_t ns = 0; ns < 4000000000LL * CKPT_NS_PER_S; ns += 7777777777777777LL) {
		for (size_t i = 0; i < 3; i++) {
			ckpt_iso_format(b, sizeof(b), ns, st[i]);
			assert_int_equal(ckpt_iso_parse(b, &back), 0);
			assert_int_equal(back, ns - ns % prec[i]);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_format_styles), cmocka_unit_test(test_ns_from_double),
		cmocka_unit_test(test_parse_forms),   cmocka_unit_test(test_parse_rejects),
		cmocka_unit_test(test_round_trip),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
