/* Reads task_struct::__state with CO-RE and no guard: the field was called
 * `state` before Linux 5.14, so relocation fails on older kernels. */
#include "common.h"

struct task_struct {
	unsigned int __state;
} __attribute__((preserve_access_index));

SEC("tracepoint/syscalls/sys_enter_getpid")
int read_state(void *ctx)
{
	struct task_struct *t = (struct task_struct *)bpf_get_current_task();
	return BPF_CORE_READ(t, __state) == 0;
}
