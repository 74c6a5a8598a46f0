/* Shared declarations for the fixture programs: no vmlinux.h, so the
 * fixtures build on any host; CO-RE types are declared with
 * preserve_access_index and only the fields we read. */
#pragma once
#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

char LICENSE[] SEC("license") = "GPL";
