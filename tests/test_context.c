/* Context switching: values live in callee-saved registers, floating point
 * and stack alignment survive switches, also onto other workers. */
#include <math.h>
#include <stdatomic.h>
#include <stdint.h>
#include "test_util.h"

/* Many live values across the switch force the compiler to keep some in
 * callee-saved registers (rbx, rbp, r12-r15). */
static __attribute__((noinline)) uint64_t churn(uint64_t seed, int rounds)
{
	uint64_t a = seed, b = seed * 3, c = seed ^ 0x55, d = seed + 7;
	uint64_t e = seed << 3, f = ~seed, g = seed * seed, h = seed | 1;
	for (int i = 0; i < rounds; i++) {
		weft_yield();
		a += b ^ c;
		b = (b << 1) | (b >> 63);
		c += d * 3;
		d ^= e + f;
		e += g;
		f -= h;
		g = g * 6364136223846793005ULL + 1;
		h += a;
	}
	return a ^ b ^ c ^ d ^ e ^ f ^ g ^ h;
}

static uint64_t churn_reference(uint64_t seed, int rounds)
{
	uint64_t a = seed, b = seed * 3, c = seed ^ 0x55, d = seed + 7;
	uint64_t e = seed << 3, f = ~seed, g = seed * seed, h = seed | 1;
	for (int i = 0; i < rounds; i++) {
		a += b ^ c;
		b = (b << 1) | (b >> 63);
		c += d * 3;
		d ^= e + f;
		e += g;
		f -= h;
		g = g * 6364136223846793005ULL + 1;
		h += a;
	}
	return a ^ b ^ c ^ d ^ e ^ f ^ g ^ h;
}

static atomic_int misaligned, wrong;

static __attribute__((noinline)) void check_alignment(void)
{
	/* SSE spills need 16-byte alignment; so does the ABI at calls. */
	_Alignas(16) volatile char probe[16];
	if ((uintptr_t)probe % 16)
		atomic_fetch_add(&misaligned, 1);
}

static void *body(void *arg)
{
	uint64_t seed = (uint64_t)(uintptr_t)arg;
	check_alignment();
	if (churn(seed, 200) != churn_reference(seed, 200))
		atomic_fetch_add(&wrong, 1);
	double x = (double)seed;
	for (int i = 0; i < 50; i++) {
		double y = sqrt(x) * 1.5;
		weft_yield();
		if (y != sqrt(x) * 1.5)
			atomic_fetch_add(&wrong, 1);
		x += 1.25;
	}
	check_alignment();
	return NULL;
}

static void *main_task(void *arg)
{
	enum { N = 64 };
	weft_task_t t[N];
	for (int i = 0; i < N; i++)
		ck_assert_int_eq(weft_spawn(&t[i], body, (void *)(uintptr_t)(i + 1)), 0);
	for (int i = 0; i < N; i++)
		ck_assert_int_eq(weft_join(t[i], NULL), 0);
	return NULL;
}

START_TEST(registers_survive)
{
	weft_test_run(main_task, NULL, 2);
	ck_assert_int_eq(atomic_load(&misaligned), 0);
	ck_assert_int_eq(atomic_load(&wrong), 0);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("context");
	TCase *tc = tcase_create("context");
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, registers_survive);
	suite_add_tcase(s, tc);
	return weft_test_main(s);
}
