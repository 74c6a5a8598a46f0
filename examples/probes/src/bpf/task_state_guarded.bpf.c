/* The same read, guarded: bpf_core_field_exists picks `__state` (5.14+) or
 * the older `state`, so this loads on every kernel with BTF. */
#include "common.h"

struct task_struct {
	unsigned int __state;
} __attribute__((preserve_access_index));

/* The pre-5.14 layout, matched by CO-RE through the ___pre514 flavor. */
struct task_struct___pre514 {
	long state;
} __attribute__((preserve_access_index));

SEC("tracepoint/syscalls/sys_enter_getpid")
int read_state_guarded(void *ctx)
{
	struct task_struct *t = (struct task_struct *)bpf_get_current_task();
	long state;

	if (bpf_core_field_exists(t->__state))
		state = BPF_CORE_READ(t, __state);
	else
		state = BPF_CORE_READ((struct task_struct___pre514 *)t, state);
	return state == 0;
}
