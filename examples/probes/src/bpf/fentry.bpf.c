/* An fentry program (BPF trampolines, Linux 5.5; needs kernel BTF). */
#include "common.h"

__u64 unlinks = 0;

SEC("fentry/do_unlinkat")
int BPF_PROG(on_unlink, int dfd, void *name)
{
	__sync_fetch_and_add(&unlinks, 1);
	return 0;
}
