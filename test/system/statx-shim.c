// Preloaded (/etc/ld.so.preload) only in the emulated arm64/armhf guests of the system test, never on a Pi.
// qemu-user answers statx() with STATX_MNT_ID set but a mount id of 0, and systemd then fails to set up
// a service's mount namespace ("Failed to set up mount namespacing"): claim no mount id instead, so
// systemd falls back to the way it works on kernels without STATX_MNT_ID.
#define _GNU_SOURCE
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef STATX_MNT_ID
#define STATX_MNT_ID 0x00001000U
#endif

int statx(int dirfd, const char *path, int flags, unsigned int mask, struct statx *buf) {
  long rc = syscall(SYS_statx, dirfd, path, flags, mask, buf);
  if (rc == 0 && (buf->stx_mask & STATX_MNT_ID) && buf->stx_mnt_id == 0) buf->stx_mask &= ~STATX_MNT_ID;
  return (int)rc;
}
