/*
 * zitdesk AppImage runtime (type 2), built offline from Debian's static libraries.
 *
 *   gcc -O2 -static -o runtime runtime.c -I/usr/include/squashfuse \
 *       -lsquashfuse_ll -lsquashfuse -lfuse3 -lzstd -llz4 -llzo2 -llzma -lz -lpthread -ldl
 *   strip runtime && printf 'AI\x02' | dd of=runtime bs=1 seek=8 count=3 conv=notrunc
 *
 * (scripts/build-linux does exactly this.) An AppImage is this ELF file followed directly by a
 * squashfs image; the image starts where the ELF ends, i.e. after the section header table,
 * which `strip` leaves at the very end of the file. Bytes 8..10 hold the type-2 magic "AI\2".
 *
 * Behaviour:
 *   (no option)                 mount the image through FUSE, run AppRun from it, unmount when
 *                               the app and every child holding the mount have exited. When FUSE
 *                               cannot be used (no /dev/fuse, no fusermount3, a container), fall
 *                               back to extract-and-run with a note on stderr.
 *   --appimage-extract-and-run  unpack into a per-version cache folder (once), run AppRun there.
 *                               Also forced by APPIMAGE_EXTRACT_AND_RUN=1.
 *   --appimage-extract          unpack into ./squashfs-root and exit.
 *   --appimage-offset           print the offset of the squashfs image and exit.
 *   --appimage-mount            mount, print the mount point, keep it until killed (debugging).
 *   --appimage-help             this list.
 * Every other argument is passed to AppRun unchanged. AppRun gets APPDIR, APPIMAGE, ARGV0, OWD.
 */
#define _GNU_SOURCE
#define FUSE_USE_VERSION 32

#include <ll.h> /* squashfuse low level API + fuse3 lowlevel */

#include <dirent.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define CACHE_DIR_NAME "zitdesk-appimage"

static const char *progname = "appimage";

static void note(const char *fmt, const char *arg) {
    fprintf(stderr, "%s: ", progname);
    fprintf(stderr, fmt, arg);
    fputc('\n', stderr);
}

/* ---- where the image starts -------------------------------------------------------------- */

static off_t squashfs_offset(const char *self) {
    Elf64_Ehdr h;
    int fd = open(self, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t got = pread(fd, &h, sizeof h, 0);
    close(fd);
    if (got != (ssize_t)sizeof h || memcmp(h.e_ident, ELFMAG, SELFMAG) != 0)
        return -1;
    if (h.e_ident[EI_CLASS] != ELFCLASS64 || h.e_shentsize == 0)
        return -1;
    return (off_t)(h.e_shoff + (uint64_t)h.e_shentsize * h.e_shnum);
}

/* ---- extraction -------------------------------------------------------------------------- */

static int make_dirs(const char *path, mode_t mode) {
    char buf[PATH_MAX];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof buf)
        return -1;
    memcpy(buf, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] != '/' && buf[i] != '\0')
            continue;
        char saved = buf[i];
        buf[i] = '\0';
        if (mkdir(buf, mode) != 0 && errno != EEXIST)
            return -1;
        buf[i] = saved;
    }
    return 0;
}

static int copy_file(sqfs *fs, sqfs_inode *inode, const char *dest, char *buf, size_t bufsize) {
    mode_t mode = inode->base.mode & 0777;
    int out = open(dest, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode ? mode : 0644);
    if (out < 0)
        return -1;
    uint64_t total = inode->xtra.reg.file_size, done = 0;
    while (done < total) {
        sqfs_off_t want = (sqfs_off_t)((total - done) < bufsize ? (total - done) : bufsize);
        if (sqfs_read_range(fs, inode, (sqfs_off_t)done, &want, buf) != SQFS_OK || want <= 0)
            break;
        for (sqfs_off_t w = 0; w < want;) {
            ssize_t r = write(out, buf + w, (size_t)(want - w));
            if (r < 0) {
                if (errno == EINTR)
                    continue;
                close(out);
                return -1;
            }
            w += r;
        }
        done += (uint64_t)want;
    }
    if (close(out) != 0 || done != total)
        return -1;
    return 0;
}

/* Unpack the whole image below `dest` (created if needed). Returns 0 on success. */
static int extract_image(const char *image, off_t offset, const char *dest) {
    enum { BUFSIZE = 4 << 20 };
    sqfs fs;
    sqfs_traverse walk;
    sqfs_err err = SQFS_OK;
    char path[PATH_MAX], link[PATH_MAX];
    int status = -1;
    char *buf = malloc(BUFSIZE);

    if (buf == NULL)
        return -1;
    if (sqfs_open_image(&fs, image, (size_t)offset) != SQFS_OK) {
        free(buf);
        return -1;
    }
    if (make_dirs(dest, 0755) != 0 || sqfs_traverse_open(&walk, &fs, sqfs_inode_root(&fs)) != SQFS_OK)
        goto out_fs;

    while (sqfs_traverse_next(&walk, &err)) {
        if (walk.dir_end)
            continue;
        sqfs_inode inode;
        if ((size_t)snprintf(path, sizeof path, "%s/%s", dest, walk.path) >= sizeof path)
            goto out_walk;
        if (sqfs_inode_get(&fs, &inode, walk.entry.inode) != SQFS_OK)
            goto out_walk;
        switch (inode.base.inode_type) {
        case SQUASHFS_DIR_TYPE:
        case SQUASHFS_LDIR_TYPE:
            if (mkdir(path, 0755) != 0 && errno != EEXIST)
                goto out_walk;
            break;
        case SQUASHFS_REG_TYPE:
        case SQUASHFS_LREG_TYPE:
            if (copy_file(&fs, &inode, path, buf, BUFSIZE) != 0)
                goto out_walk;
            break;
        case SQUASHFS_SYMLINK_TYPE:
        case SQUASHFS_LSYMLINK_TYPE: {
            size_t size = sizeof link;
            if (sqfs_readlink(&fs, &inode, link, &size) != SQFS_OK)
                goto out_walk;
            unlink(path);
            if (symlink(link, path) != 0)
                goto out_walk;
            break;
        }
        default: /* device nodes, fifos, sockets have no place in an AppDir */
            break;
        }
    }
    status = (err == SQFS_OK) ? 0 : -1;
out_walk:
    sqfs_traverse_close(&walk);
out_fs:
    sqfs_destroy(&fs);
    free(buf);
    return status;
}

static int remove_tree(const char *path) {
    struct stat st;
    if (lstat(path, &st) != 0)
        return errno == ENOENT ? 0 : -1;
    if (!S_ISDIR(st.st_mode))
        return unlink(path);
    DIR *d = opendir(path);
    if (d == NULL)
        return -1;
    struct dirent *e;
    char child[PATH_MAX];
    while ((e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        snprintf(child, sizeof child, "%s/%s", path, e->d_name);
        remove_tree(child);
    }
    closedir(d);
    return rmdir(path);
}

/* ---- running AppRun ---------------------------------------------------------------------- */

static void run_apprun(const char *appdir, const char *self, char **argv) {
    char apprun[PATH_MAX], cwd[PATH_MAX];
    snprintf(apprun, sizeof apprun, "%s/AppRun", appdir);
    setenv("APPDIR", appdir, 1);
    setenv("APPIMAGE", self, 1);
    setenv("ARGV0", argv[0], 1);
    if (getcwd(cwd, sizeof cwd) != NULL)
        setenv("OWD", cwd, 1);
    argv[0] = apprun;
    execv(apprun, argv);
    note("cannot start AppRun: %s", strerror(errno));
    _exit(127);
}

/* The cache folder is keyed by the file's name, size and modification time, so a new version
 * extracts again; caches of other versions of the same file name are removed afterwards. */
static int extract_and_run(const char *self, off_t offset, char **argv) {
    struct stat st;
    char base[PATH_MAX - 600], dir[PATH_MAX], part[PATH_MAX + 32], done[PATH_MAX + 64], prefix[NAME_MAX];
    const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    const char *name = strrchr(self, '/') ? strrchr(self, '/') + 1 : self;

    if (stat(self, &st) != 0)
        return -1;
    if (xdg && *xdg)
        snprintf(base, sizeof base, "%s/%s", xdg, CACHE_DIR_NAME);
    else
        snprintf(base, sizeof base, "%s/.cache/%s", (home && *home) ? home : "/tmp", CACHE_DIR_NAME);
    snprintf(prefix, sizeof prefix, "%.200s-", name);
    snprintf(dir, sizeof dir, "%s/%s%llx-%llx", base, prefix, (unsigned long long)st.st_size,
             (unsigned long long)st.st_mtime);
    snprintf(done, sizeof done, "%s/.extracted", dir);

    if (access(done, F_OK) != 0) {
        snprintf(part, sizeof part, "%s.tmp%ld", dir, (long)getpid());
        note("unpacking into %s (first start of this version only)", dir);
        if (extract_image(self, offset, part) != 0) {
            int e = errno;
            fprintf(stderr, "%s: unpacking into %s failed: %s\n", progname, part, strerror(e));
            remove_tree(part);
            return -1;
        }
        snprintf(done, sizeof done, "%s/.extracted", part);
        int fd = open(done, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        if (fd >= 0)
            close(fd);
        if (rename(part, dir) != 0) { /* another instance finished first: use its copy */
            remove_tree(part);
            snprintf(done, sizeof done, "%s/.extracted", dir);
            if (access(done, F_OK) != 0)
                return -1;
        }
        DIR *d = opendir(base); /* drop the caches of older versions of this file */
        if (d != NULL) {
            struct dirent *e;
            const char *mine = strrchr(dir, '/') + 1;
            char old[PATH_MAX];
            while ((e = readdir(d)) != NULL) {
                if (strncmp(e->d_name, prefix, strlen(prefix)) == 0 && strcmp(e->d_name, mine) != 0 &&
                    strstr(e->d_name, ".tmp") == NULL) {
                    snprintf(old, sizeof old, "%s/%s", base, e->d_name);
                    remove_tree(old);
                }
            }
            closedir(d);
        }
    }
    run_apprun(dir, self, argv);
    return -1;
}

/* ---- FUSE -------------------------------------------------------------------------------- */

/* Serve FUSE requests until the last process holding `hold_fd`'s other end has exited. */
static void serve(struct fuse_session *se, int hold_fd) {
    struct fuse_buf fbuf = {0};
    int fuse_fd = fuse_session_fd(se);
    for (;;) {
        struct pollfd fds[2] = {{.fd = fuse_fd, .events = POLLIN}, {.fd = hold_fd, .events = POLLIN}};
        if (poll(fds, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (fds[0].revents & POLLIN) {
            int r = fuse_session_receive_buf(se, &fbuf);
            if (r == -EINTR || r == -EAGAIN)
                continue;
            if (r <= 0)
                break; /* unmounted from outside */
            fuse_session_process_buf(se, &fbuf);
            continue; /* drain requests before looking at the hold pipe */
        }
        if (fds[0].revents & (POLLERR | POLLHUP))
            break;
        if (fds[1].revents)
            break; /* every writer closed: the app and its children are gone */
    }
    free(fbuf.mem);
}

/* Fork a FUSE server for the image and return its mount point in `mnt` (0 on success). The
 * server keeps running until every process that inherited `*hold_write` has exited. */
static int mount_image(const char *self, off_t offset, char *mnt, size_t mntsize, int *hold_write) {
    const char *tmp = getenv("TMPDIR");
    int ready[2], hold[2];
    snprintf(mnt, mntsize, "%s/.mount_zitdesk_XXXXXX", (tmp && *tmp) ? tmp : "/tmp");
    if (mkdtemp(mnt) == NULL)
        return -1;
    if (pipe2(ready, O_CLOEXEC) != 0 || pipe(hold) != 0) {
        rmdir(mnt);
        return -1;
    }
    pid_t pid = fork();
    if (pid < 0) {
        rmdir(mnt);
        return -1;
    }
    if (pid == 0) {
        /* The server must outlive a Ctrl-C in the terminal: the app decides when it ends. */
        signal(SIGINT, SIG_IGN);
        signal(SIGQUIT, SIG_IGN);
        signal(SIGHUP, SIG_IGN);
        close(ready[0]);
        close(hold[1]);
        static struct fuse_lowlevel_ops ops;
        ops.lookup = sqfs_ll_op_lookup;
        ops.forget = sqfs_ll_op_forget;
        ops.getattr = sqfs_ll_op_getattr;
        ops.readlink = sqfs_ll_op_readlink;
        ops.open = sqfs_ll_op_open;
        ops.read = sqfs_ll_op_read;
        ops.release = sqfs_ll_op_release;
        ops.opendir = sqfs_ll_op_opendir;
        ops.readdir = sqfs_ll_op_readdir;
        ops.releasedir = sqfs_ll_op_releasedir;
        ops.statfs = stfs_ll_op_statfs;
        ops.getxattr = sqfs_ll_op_getxattr;
        ops.listxattr = sqfs_ll_op_listxattr;
        char *fuse_argv[] = {(char *)progname, "-o", "ro,nodev,nosuid,fsname=zitdesk-appimage,subtype=appimage", NULL};
        struct fuse_args args = FUSE_ARGS_INIT(3, fuse_argv);
        sqfs_ll_chan chan;
        sqfs_ll *ll = sqfs_ll_open(self, (size_t)offset);
        char answer = 'n';
        if (ll != NULL && sqfs_ll_mount(&chan, mnt, &args, &ops, sizeof ops, ll) == SQFS_OK) {
            answer = 'y';
            if (write(ready[1], &answer, 1) != 1) { /* parent gone: unmount below */ }
            close(ready[1]);
            serve(chan.session, hold[0]);
            sqfs_ll_unmount(&chan, mnt);
        } else if (write(ready[1], &answer, 1) != 1) {
            /* nothing to tell */
        }
        rmdir(mnt);
        _exit(answer == 'y' ? 0 : 1);
    }
    close(ready[1]);
    close(hold[0]);
    char answer = 'n';
    ssize_t got;
    do {
        got = read(ready[0], &answer, 1);
    } while (got < 0 && errno == EINTR);
    close(ready[0]);
    if (got != 1 || answer != 'y') {
        close(hold[1]);
        waitpid(pid, NULL, 0);
        rmdir(mnt);
        return -1;
    }
    *hold_write = hold[1]; /* inherited by AppRun and everything it starts */
    return 0;
}

/* ---- main -------------------------------------------------------------------------------- */

static void usage(void) {
    puts("zitdesk AppImage runtime options (everything else goes to the app):\n"
         "  --appimage-extract-and-run  unpack into ~/.cache/" CACHE_DIR_NAME " once and run from there\n"
         "                              (also APPIMAGE_EXTRACT_AND_RUN=1; used automatically without FUSE)\n"
         "  --appimage-extract          unpack into ./squashfs-root\n"
         "  --appimage-mount            mount, print the mount point, wait until killed\n"
         "  --appimage-offset           print where the squashfs image starts\n"
         "  --appimage-help             this text");
}

int main(int argc, char **argv) {
    char self[PATH_MAX], mnt[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) {
        perror("appimage: /proc/self/exe");
        return 1;
    }
    self[n] = '\0';
    off_t offset = squashfs_offset(self);
    if (offset <= 0) {
        note("%s is not a valid AppImage (no ELF header)", self);
        return 1;
    }

    const char *opt = argc > 1 ? argv[1] : "";
    if (!strcmp(opt, "--appimage-help")) {
        usage();
        return 0;
    }
    if (!strcmp(opt, "--appimage-offset")) {
        printf("%lld\n", (long long)offset);
        return 0;
    }
    if (!strcmp(opt, "--appimage-extract")) {
        if (extract_image(self, offset, "squashfs-root") != 0) {
            note("%s", "unpacking into ./squashfs-root failed");
            return 1;
        }
        puts("squashfs-root");
        return 0;
    }
    if (!strcmp(opt, "--appimage-mount")) {
        int hold;
        if (mount_image(self, offset, mnt, sizeof mnt, &hold) != 0) {
            note("%s", "FUSE mount failed (is fusermount3 installed?)");
            return 1;
        }
        puts(mnt);
        fflush(stdout);
        pause(); /* the server unmounts when we die and `hold` closes */
        return 0;
    }

    const char *env = getenv("APPIMAGE_EXTRACT_AND_RUN");
    int extract = env != NULL && *env && strcmp(env, "0") != 0;
    if (!strcmp(opt, "--appimage-extract-and-run")) {
        extract = 1;
        memmove(&argv[1], &argv[2], (size_t)(argc - 1) * sizeof(char *)); /* keeps the NULL */
        argc--;
    }
    if (!extract) {
        int hold;
        if (mount_image(self, offset, mnt, sizeof mnt, &hold) == 0)
            run_apprun(mnt, self, argv);
        note("%s", "FUSE is not usable here; falling back to --appimage-extract-and-run "
                   "(install fuse3 for faster starts)");
    }
    extract_and_run(self, offset, argv);
    note("%s", "could not start the application");
    return 1;
}
