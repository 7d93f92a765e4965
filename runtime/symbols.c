/* Symbols: see symbols.h. */
#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "symbols.h"

#ifdef WEFT_HAVE_LIBDW
#include <elfutils/libdwfl.h>
#endif

#define MAX_OBJECTS 256
#define MAX_SEGMENTS 512
#define CACHE_BITS 12
#define NAME_MAX_LEN 384

struct func {
	uintptr_t addr;
	size_t size;
	const char *name;
};

struct object {
	char path[256];
	uintptr_t base; /* load bias */
	bool loaded;    /* its symbols were looked for */
	void *map;      /* the file, mapped: names point into it */
	size_t map_len;
	struct func *funcs; /* sorted by addr */
	size_t nfuncs;
};

struct segment {
	uintptr_t lo, hi; /* an executable PT_LOAD segment */
	int object;
};

/* Names already written: a dump of many tasks parked in the same places
 * formats each return address once. */
struct cached {
	uintptr_t addr; /* 0: empty */
	bool func;
	char name[NAME_MAX_LEN];
};

struct weft__symbols {
#ifdef WEFT_HAVE_LIBDW
	Dwfl *dwfl;      /* this process's modules, reported when first asked */
	bool dwfl_tried; /* whether that was tried */
#endif
	struct cached cache[1 << CACHE_BITS];
	struct object objects[MAX_OBJECTS];
	int nobjects;
	struct segment segments[MAX_SEGMENTS];
	int nsegments;
};

static int add_object(struct dl_phdr_info *info, size_t size, void *arg)
{
	struct weft__symbols *s = arg;
	if (s->nobjects == MAX_OBJECTS)
		return 1;
	struct object *o = &s->objects[s->nobjects];
	if (info->dlpi_name && *info->dlpi_name) {
		snprintf(o->path, sizeof(o->path), "%s", info->dlpi_name);
	} else if (s->nobjects == 0) { /* the program itself */
		ssize_t n = readlink("/proc/self/exe", o->path,
				     sizeof(o->path) - 1);
		o->path[n > 0 ? n : 0] = '\0';
	}
	o->base = info->dlpi_addr;
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *p = &info->dlpi_phdr[i];
		if (p->p_type != PT_LOAD || !(p->p_flags & PF_X) ||
		    s->nsegments == MAX_SEGMENTS)
			continue;
		struct segment *g = &s->segments[s->nsegments++];
		g->lo = info->dlpi_addr + p->p_vaddr;
		g->hi = g->lo + p->p_memsz;
		g->object = s->nobjects;
	}
	s->nobjects++;
	return 0;
}

struct weft__symbols *weft__symbols_load(void)
{
	struct weft__symbols *s = calloc(1, sizeof(*s));
	if (s)
		dl_iterate_phdr(add_object, s);
	return s;
}

void weft__symbols_free(struct weft__symbols *s)
{
	if (!s)
		return;
#ifdef WEFT_HAVE_LIBDW
	if (s->dwfl)
		dwfl_end(s->dwfl);
#endif
	for (int i = 0; i < s->nobjects; i++) {
		free(s->objects[i].funcs);
		if (s->objects[i].map)
			munmap(s->objects[i].map, s->objects[i].map_len);
	}
	free(s);
}

/* The segment list is read-only after load. The stall report's signal
 * handler reads it (after an acquire, see stall.c), which ThreadSanitizer
 * does not pair across the signal's delivery: hence no_sanitize. */
__attribute__((no_sanitize("thread"))) static const struct segment *
segment_of(const struct weft__symbols *s, uintptr_t a)
{
	for (int i = 0; i < s->nsegments; i++)
		if (a >= s->segments[i].lo && a < s->segments[i].hi)
			return &s->segments[i];
	return NULL;
}

/* The call instructions a return address can follow: call rel32 (E8),
 * and call through a register or memory (FF /2) with the encodings of
 * its operand that compilers emit, with or without a REX prefix. */
#if defined(__x86_64__)
__attribute__((no_sanitize("thread"))) static bool
after_call(const unsigned char *ip)
{
	if (ip[-5] == 0xe8)
		return true;
	for (int len = 2; len <= 7; len++) {
		unsigned char modrm = ip[-len + 1];
		if (ip[-len] != 0xff || ((modrm >> 3) & 7) != 2)
			continue;
		int mod = modrm >> 6, rm = modrm & 7;
		int want = mod == 3   ? 2
			   : mod == 1 ? 3
			   : mod == 2 ? 6
			   : rm == 5  ? 6
				      : 2;
		if (mod != 3 && rm == 4)
			want++; /* a SIB byte */
		if (len == want)
			return true;
	}
	return false;
}
#elif defined(__aarch64__)
/* aarch64: the word before a return address is BL (imm26) or BLR (Xn). */
__attribute__((no_sanitize("thread"))) static bool
after_call(const unsigned char *ip)
{
	uint32_t insn;
	if ((uintptr_t)ip & 3)
		return false;
	memcpy(&insn, ip - 4, sizeof(insn));
	return (insn & 0xfc000000u) == 0x94000000u ||
	       (insn & 0xfffffc1fu) == 0xd63f0000u;
}
#else
#error "after_call: no call decoding for this CPU yet"
#endif

__attribute__((no_sanitize("thread"))) bool
weft__symbols_is_return(const struct weft__symbols *s, uintptr_t a)
{
	const struct segment *g = segment_of(s, a);
	return g && a - g->lo >= 8 && after_call((const unsigned char *)a);
}

static int by_addr(const void *a, const void *b)
{
	const struct func *x = a, *y = b;
	return x->addr < y->addr ? -1 : x->addr > y->addr;
}

/* The section of type type in the mapped file, or NULL. */
static const ElfW(Shdr) *
	find_section(const ElfW(Ehdr) * e, size_t len, unsigned type)
{
	const ElfW(Shdr) *sh = (const void *)((const char *)e + e->e_shoff);
	for (int i = 0; i < e->e_shnum; i++)
		if (sh[i].sh_type == type && sh[i].sh_link < e->e_shnum &&
		    sh[i].sh_offset + sh[i].sh_size <= len)
			return &sh[i];
	return NULL;
}

static bool valid_elf(const ElfW(Ehdr) * e, size_t len)
{
	return len >= sizeof(*e) && !memcmp(e->e_ident, ELFMAG, SELFMAG) &&
	       e->e_ident[EI_CLASS] == ELFCLASS64 &&
	       e->e_shoff + (size_t)e->e_shnum * sizeof(ElfW(Shdr)) <= len;
}

/* Reads o's function symbols from its file. Leaves none on any failure. */
static void load_object(struct object *o)
{
	o->loaded = true;
	int fd = *o->path ? open(o->path, O_RDONLY | O_CLOEXEC) : -1;
	struct stat st;
	if (fd < 0)
		return;
	void *map = fstat(fd, &st) ? MAP_FAILED
				   : mmap(NULL, (size_t)st.st_size, PROT_READ,
					  MAP_PRIVATE, fd, 0);
	close(fd);
	if (map == MAP_FAILED)
		return;
	o->map = map;
	o->map_len = (size_t)st.st_size;
	const ElfW(Ehdr) *e = map;
	if (!valid_elf(e, o->map_len))
		return;
	const ElfW(Shdr) *sym = find_section(e, o->map_len, SHT_SYMTAB);
	if (!sym)
		sym = find_section(e, o->map_len, SHT_DYNSYM);
	if (!sym)
		return;
	const ElfW(Shdr) *str =
		(const ElfW(Shdr) *)((const char *)e + e->e_shoff) +
		sym->sh_link;
	if (str->sh_offset + str->sh_size > o->map_len)
		return;
	const ElfW(Sym) *syms =
		(const void *)((const char *)map + sym->sh_offset);
	size_t n = sym->sh_size / sizeof(ElfW(Sym));
	const char *names = (const char *)map + str->sh_offset;
	o->funcs = malloc(n * sizeof(*o->funcs));
	if (!o->funcs)
		return;
	for (size_t i = 0; i < n; i++) {
		int type = ELF64_ST_TYPE(syms[i].st_info);
		if ((type != STT_FUNC && type != STT_GNU_IFUNC) ||
		    !syms[i].st_value || syms[i].st_name >= str->sh_size)
			continue;
		o->funcs[o->nfuncs++] =
			(struct func){ o->base + syms[i].st_value,
				       syms[i].st_size,
				       names + syms[i].st_name };
	}
	qsort(o->funcs, o->nfuncs, sizeof(*o->funcs), by_addr);
}

static const struct func *func_at(struct object *o, uintptr_t a)
{
	if (!o->loaded)
		load_object(o);
	size_t lo = 0, hi = o->nfuncs;
	while (lo < hi) { /* the last function starting at or before a */
		size_t mid = (lo + hi) / 2;
		if (o->funcs[mid].addr <= a)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (!lo)
		return NULL;
	const struct func *f = &o->funcs[lo - 1];
	return a < f->addr + (f->size ? f->size : 1) ? f : NULL;
}

#ifdef WEFT_HAVE_LIBDW
/* libdwfl opens the files it reads without O_CLOEXEC and keeps them till
 * dwfl_end: a program a task starts meanwhile (a stall report or a dump
 * under way) would inherit them. Marked as soon as libdwfl hands them
 * over. */
static int cloexec(int fd)
{
	if (fd >= 0)
		fcntl(fd, F_SETFD, FD_CLOEXEC);
	return fd;
}

static int find_elf(Dwfl_Module *m, void **userdata, const char *name,
		    Dwarf_Addr base, char **file, Elf **elfp)
{
	return cloexec(
		dwfl_linux_proc_find_elf(m, userdata, name, base, file, elfp));
}

static int find_debuginfo(Dwfl_Module *m, void **userdata, const char *modname,
			  Dwarf_Addr base, const char *file,
			  const char *debuglink, GElf_Word crc,
			  char **debuginfo_file)
{
	return cloexec(dwfl_standard_find_debuginfo(m, userdata, modname, base,
						    file, debuglink, crc,
						    debuginfo_file));
}

static const Dwfl_Callbacks dwfl_callbacks = {
	.find_elf = find_elf,
	.find_debuginfo = find_debuginfo,
};

/* The modules of this process, as libdw sees them; NULL if it cannot. */
static Dwfl *dwfl_of(struct weft__symbols *s)
{
	if (s->dwfl_tried)
		return s->dwfl;
	s->dwfl_tried = true;
	Dwfl *d = dwfl_begin(&dwfl_callbacks);
	if (!d)
		return NULL;
	dwfl_report_begin(d);
	int r = dwfl_linux_proc_report(d, getpid());
	if (dwfl_report_end(d, NULL, NULL) || r) {
		dwfl_end(d);
		return NULL;
	}
	return s->dwfl = d;
}

/* Appends " at file:line" for the code at a, if its object has DWARF line
 * information. */
static void add_line(struct weft__symbols *s, uintptr_t a, char *buf,
		     size_t len)
{
	Dwfl *d = dwfl_of(s);
	Dwfl_Module *m = d ? dwfl_addrmodule(d, a) : NULL;
	Dwfl_Line *l = m ? dwfl_module_getsrc(m, a) : NULL;
	int line = 0;
	const char *file = l ? dwfl_lineinfo(l, NULL, &line, NULL, NULL, NULL)
			     : NULL;
	size_t used = strlen(buf);
	if (file && line > 0 && used < len)
		snprintf(buf + used, len - used, " at %s:%d", file, line);
}
#else
static void add_line(struct weft__symbols *s, uintptr_t a, char *buf,
		     size_t len)
{
	/* No libdw: object+offset is for addr2line. */
}
#endif

/* Names the code at a, which a return address r (or a function, r = a)
 * points into. */
static void name_code(struct weft__symbols *s, uintptr_t a, uintptr_t r,
		      char *buf, size_t len)
{
	const struct segment *g = segment_of(s, a);
	if (!g) {
		snprintf(buf, len, "?");
		return;
	}
	struct object *o = &s->objects[g->object];
	const char *path = strrchr(o->path, '/');
	path = path ? path + 1 : o->path;
	const struct func *f = func_at(o, a);
	if (f && r == f->addr)
		snprintf(buf, len, "%s (%s+0x%lx)", f->name, path,
			 (unsigned long)(a - o->base));
	else if (f)
		snprintf(buf, len, "%s+0x%lx (%s+0x%lx)", f->name,
			 (unsigned long)(r - f->addr), path,
			 (unsigned long)(r - o->base));
	else
		snprintf(buf, len, "? (%s+0x%lx)", path,
			 (unsigned long)(r - o->base));
}

static const char *name_cached(struct weft__symbols *s, uintptr_t a, bool func)
{
	struct cached *c =
		&s->cache[(a * 0x9e3779b97f4a7c15ULL) >> (64 - CACHE_BITS)];
	if (c->addr != a || c->func != func) {
		name_code(s, func ? a : a - 1, a, c->name, sizeof(c->name));
		if (!func)
			add_line(s, a - 1, c->name, sizeof(c->name));
		c->addr = a;
		c->func = func;
	}
	return c->name;
}

const char *weft__symbols_name(struct weft__symbols *s, uintptr_t a)
{
	return name_cached(s, a, false);
}

const char *weft__symbols_func(struct weft__symbols *s, uintptr_t a)
{
	return name_cached(s, a, true);
}
