/*
 * kv_hash_check: kv_server's store, built in (its main() renamed), under
 * hash flooding. A client that knows the store's hash function can pick
 * keys that all fall into one bucket, and make every command walk them all
 * (O(n) each, quadratic for n SETs). Here the client knows FNV-1a, which
 * the server used unseeded: 64 keys that collide under it are stored, and
 * the longest chain of buckets is counted (no timing, so no flakes). With a
 * hash keyed per process, the keys spread as any others do: a chain of 8 of
 * 64 keys in 4096 buckets has a chance far below 1e-15. First, the
 * SipHash-2-4 written there gives the reference vectors.
 */
#define main kv_server_main
#include "../kv_server.c"
#undef main

#define KEYS 64

/* What the client knows: the unseeded FNV-1a the server used. */
static uint64_t fnv1a(const char *key, size_t len)
{
	uint64_t h = 14695981039346656037u;

	while (len--)
		h = (h ^ (unsigned char)*key++) * 1099511628211u;
	return h;
}

/* SipHash-2-4's reference vectors (the paper's appendix; the message of
 * length n is the bytes 0 .. n-1, the key 0 .. 15), n = 0, 8, 15. */
static bool siphash_right(void)
{
	static const uint64_t want[] = { 0x726fdb47dd0e0e31u,
					 0x93f5f5799a932462u,
					 0xa129ca6149be45e5u };
	static const size_t lens[] = { 0, 8, 15 };
	unsigned char msg[16], k[16];

	for (int i = 0; i < 16; i++)
		msg[i] = k[i] = (unsigned char)i;
	sip_key[0] = sip_key[1] = 0;
	for (int i = 0; i < 8; i++) {
		sip_key[0] |= (uint64_t)k[i] << (8 * i);
		sip_key[1] |= (uint64_t)k[8 + i] << (8 * i);
	}
	for (int i = 0; i < 3; i++)
		if (siphash(msg, lens[i]) != want[i]) {
			fprintf(stderr,
				"FAIL: SipHash-2-4 of %zu bytes: %016llx\n",
				lens[i],
				(unsigned long long)siphash(msg, lens[i]));
			return false;
		}
	return true;
}

int main(void)
{
	char key[32];
	size_t found = 0, longest = 0;
	uint64_t target = fnv1a("k0", 2) % BUCKETS;

	if (!siphash_right())
		return 1;
	if (!seed()) {
		fprintf(stderr, "FAIL: getrandom: %s\n", strerror(errno));
		return 1;
	}
	for (int i = 0; i < STRIPES; i++)
		weft_lock_init(&stripes[i]);
	/* Keys colliding under FNV-1a: one in BUCKETS of "k0", "k1", ... */
	for (unsigned long i = 0; found < KEYS; i++) {
		int len = snprintf(key, sizeof(key), "k%lu", i);

		if (fnv1a(key, (size_t)len) % BUCKETS != target)
			continue;
		if (set(key, (size_t)len, "v", 1)) {
			fprintf(stderr, "FAIL: SET %s refused\n", key);
			return 1;
		}
		found++;
	}
	for (size_t b = 0; b < BUCKETS; b++) {
		size_t n = 0;

		for (struct entry *e = buckets[b]; e; e = e->next)
			n++;
		if (n > longest)
			longest = n;
	}
	printf("%d keys colliding under FNV-1a: longest chain %zu\n", KEYS,
	       longest);
	if (longest >= 8) {
		fprintf(stderr, "FAIL: hash flooding: a chain of %zu keys\n",
			longest);
		return 1;
	}
	return 0;
}
