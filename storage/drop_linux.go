package storage

import "syscall"

// dropResident tells the kernel the process no longer needs the pages of
// the read-only shared file mapping [addr, addr+size): they leave its
// resident memory and stay in the page cache, so a later read faults them
// back in from there with the same bytes. The raw syscall takes the
// address as a number, so no pointer is made from a uintptr. A failure
// only means memory is not given back, so it is ignored.
func dropResident(addr uintptr, size int64) {
	if addr == 0 || size <= 0 {
		return
	}
	_, _, _ = syscall.Syscall(syscall.SYS_MADVISE, addr, uintptr(size), syscall.MADV_DONTNEED)
}
