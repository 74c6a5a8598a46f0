/* bpf_loop (helper 181, Linux 5.17). */
#include "common.h"

static long step(__u32 i, void *ctx)
{
	(*(__u64 *)ctx) += i;
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_getpid")
int count_with_loop(void *ctx)
{
	__u64 sum = 0;
	bpf_loop(16, step, &sum, 0);
	return sum > 1000;
}
