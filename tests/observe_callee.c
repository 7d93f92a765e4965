/* A shared object test_observe loads from copies of its own (from a long
 * path, from a damaged file): a frame of it on a parked task's stack must
 * be named in a dump, or at least not bring the dump down. */
__attribute__((noinline)) void *observe_callee_call(void *(*fn)(void *),
						    void *arg)
{
	void *volatile r = fn(arg); /* not a tail call: this frame stays */
	return r;
}
