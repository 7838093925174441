// SPDX-License-Identifier: MIT
/* test_utf8.c - strict UTF-8 validation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "ckptfs/utf8.h"

#define V(s) ckpt_utf8_valid(s, sizeof(s) - 1)

static void test_valid(void **state)
{
	assert_true(V(""));
	assert_true(V("plain ascii"));
	assert_true(V("caf\xc3\xa9"));	    /* é */
	assert_true(V("\xe2\x82\xac"));	    /* € */
	assert_true(V("\xf0\x9f\x98\x80")); /* U+1F600 */
	assert_true(V("\xf4\x8f\xbf\xbf")); /* U+10FFFF */
	assert_true(V("\xed\x9f\xbf"));	    /* U+D7FF */
}

static void test_invalid(void **state)
{
	assert_false(V("\x80"));	     /* lone continuation */
	assert_false(V("\xc0\x80"));	     /* overlong NUL */
	assert_false(V("\xc1\xbf"));	     /* overlong */
	assert_false(V("\xe0\x80\x80"));     /* overlong 3-byte */
	assert_false(V("\xed\xa0\x80"));     /* surrogate */
	assert_false(V("\xf0\x80\x80\x80")); /* overlong 4-byte */
	assert_false(V("\xf4\x90\x80\x80")); /* above U+10FFFF */
	assert_false(V("\xf5\x80\x80\x80")); /* invalid lead */
	assert_false(V("\xe2\x82"));	     /* truncated */
	assert_false(V("\xe2\x28\xa1"));     /* bad continuation */
	assert_false(V("\xff"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid),
		cmocka_unit_test(test_invalid),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
