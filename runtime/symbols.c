/* Symbols: see symbols.h. */
#include <elf.h>
#include <fcntl.h>
#include <limits.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "symbols.h"

#ifdef WEFT_HAVE_LIBDW
#include <elfutils/libdw.h>
#include <elfutils/libdwelf.h>
#include <libelf.h>
#endif

#define CACHE_BITS 12
#define NAME_MAX_LEN 384
/* The most of a function's name a line shows: a longer one (a C++
 * template's mangled name runs to hundreds of characters) is cut there and
 * marked "...", leaving room in NAME_MAX_LEN for the object and offset
 * after it, which addr2line needs, and for the file and line. */
#define FUNC_SHOWN 192

struct func {
	uintptr_t addr;
	size_t size;
	const char *name;
};

#ifdef WEFT_HAVE_LIBDW
/* A file of DWARF, open: all three set, or none (dwarf NULL). */
struct dwarf_file {
	int fd;
	Elf *elf;
	Dwarf *dwarf;
};
#endif

struct object {
	char *path;     /* its file, NULL if unknown */
	uintptr_t base; /* load bias */
	bool loaded;    /* its symbols were looked for */
	void *map;      /* the file, mapped: names point into it */
	size_t map_len;
	struct func *funcs; /* sorted by addr */
	size_t nfuncs;
#ifdef WEFT_HAVE_LIBDW
	bool dwarf_tried;        /* whether its DWARF was looked for */
	struct dwarf_file debug; /* its DWARF: in the file, or separate */
	struct dwarf_file alt;   /* debug's dwz supplement, if it has one */
#endif
};

struct segment {
	uintptr_t lo, hi; /* an executable PT_LOAD segment */
	int object;
	bool readable; /* PF_R: else mapped PROT_EXEC alone, and a load from
			* it may fault (x86-64 protection keys, aarch64
			* FEAT_EPAN) */
};

/* Names already written: a dump of many tasks parked in the same places
 * formats each return address once. */
struct cached {
	uintptr_t addr; /* 0: empty */
	bool func;
	char name[NAME_MAX_LEN];
};

/* Every loaded object and every executable segment, however many: a
 * frame in an object left out would be missed by the scans, which take
 * only addresses inside a segment for return addresses (a program with
 * its plugins, or Python with its extension modules, loads hundreds). */
struct weft__symbols {
	struct cached cache[1 << CACHE_BITS];
	struct object *objects;
	int nobjects, objects_cap;
	struct segment *segments;
	int nsegments, segments_cap;
	bool short_of_memory; /* an object or segment left out */
};

/* arr, of *cap elements of size each, grown (the new ones zeroed); NULL
 * if out of memory, arr then unchanged. */
static void *grow(void *arr, int *cap, size_t size)
{
	int more = *cap ? *cap * 2 : 64;
	char *p = realloc(arr, (size_t)more * size);
	if (!p)
		return NULL;
	memset(p + (size_t)*cap * size, 0, (size_t)(more - *cap) * size);
	*cap = more;
	return p;
}

static int add_object(struct dl_phdr_info *info, size_t size, void *arg)
{
	struct weft__symbols *s = arg;
	if (s->nobjects == s->objects_cap) {
		struct object *a =
			grow(s->objects, &s->objects_cap, sizeof(*a));
		if (!a) {
			s->short_of_memory = true;
			return 1;
		}
		s->objects = a;
	}
	struct object *o = &s->objects[s->nobjects];
	/* Whole: a path cut short names no file, or another one. */
	if (info->dlpi_name && *info->dlpi_name) {
		o->path = strdup(info->dlpi_name);
	} else if (s->nobjects == 0) { /* the program itself */
		char exe[PATH_MAX];
		ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
		if (n > 0) {
			exe[n] = '\0';
			o->path = strdup(exe);
		}
	}
	o->base = info->dlpi_addr;
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *p = &info->dlpi_phdr[i];
		if (p->p_type != PT_LOAD || !(p->p_flags & PF_X))
			continue;
		if (s->nsegments == s->segments_cap) {
			struct segment *a =
				grow(s->segments, &s->segments_cap, sizeof(*a));
			if (!a) {
				s->short_of_memory = true;
				break; /* o is counted below, to be freed */
			}
			s->segments = a;
		}
		struct segment *g = &s->segments[s->nsegments++];
		g->lo = info->dlpi_addr + p->p_vaddr;
		g->hi = g->lo + p->p_memsz;
		g->object = s->nobjects;
		g->readable = p->p_flags & PF_R;
	}
	s->nobjects++;
	return s->short_of_memory;
}

struct weft__symbols *weft__symbols_load(void)
{
	struct weft__symbols *s = calloc(1, sizeof(*s));
#ifdef WEFT_HAVE_LIBDW
	elf_version(EV_CURRENT); /* libelf's elf_begin refuses to work before */
#endif
	if (s)
		dl_iterate_phdr(add_object, s);
	/* A table missing objects would miss their frames: none rather. */
	if (s && s->short_of_memory) {
		weft__symbols_free(s);
		return NULL;
	}
	return s;
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
#define CODE_ALIGN 1
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
#define CODE_ALIGN 4
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

#if defined(__aarch64__)
/* XPACLRI strips x30; in the hint space, so a CPU without FEAT_PAuth
 * runs it as a NOP, and there no address is signed either. XPACI would
 * fault there. */
uintptr_t weft__return_strip(uintptr_t a)
{
	__asm__("mov x30, %0\n\t"
		"hint #7\n\t" /* xpaclri */
		"mov %0, x30"
		: "+r"(a)
		:
		: "x30");
	return a;
}
#else
uintptr_t weft__return_strip(uintptr_t a)
{
	return a; /* x86-64 signs no return address */
}
#endif

__attribute__((no_sanitize("thread"))) bool
weft__symbols_is_return(const struct weft__symbols *s, uintptr_t a)
{
	const struct segment *g = segment_of(s, a);
	if (!g || a - g->lo < 8)
		return false;
	/* Code that may only be executed cannot be read for its call: any
	 * word inside it may be a return address (an instruction's, on
	 * aarch64), as a frame missed would be worse than one too many. */
	if (!g->readable)
		return a % CODE_ALIGN == 0;
	return after_call((const unsigned char *)a);
}

static int by_addr(const void *a, const void *b)
{
	const struct func *x = a, *y = b;
	return x->addr < y->addr ? -1 : x->addr > y->addr;
}

/* Whether [off, off + size) lies in a file of len bytes. Without the sum,
 * which a damaged or hostile header's offset makes wrap around. */
static bool in_file(uint64_t off, uint64_t size, size_t len)
{
	return off <= len && size <= len - off;
}

/* The section of type type in the mapped file, or NULL. */
static const ElfW(Shdr) *
	find_section(const ElfW(Ehdr) * e, size_t len, unsigned type)
{
	const ElfW(Shdr) *sh = (const void *)((const char *)e + e->e_shoff);
	for (int i = 0; i < e->e_shnum; i++)
		if (sh[i].sh_type == type && sh[i].sh_link < e->e_shnum &&
		    in_file(sh[i].sh_offset, sh[i].sh_size, len))
			return &sh[i];
	return NULL;
}

static bool valid_elf(const ElfW(Ehdr) * e, size_t len)
{
	return len >= sizeof(*e) && !memcmp(e->e_ident, ELFMAG, SELFMAG) &&
	       e->e_ident[EI_CLASS] == ELFCLASS64 &&
	       e->e_shentsize == sizeof(ElfW(Shdr)) &&
	       in_file(e->e_shoff, (uint64_t)e->e_shnum * sizeof(ElfW(Shdr)),
		       len);
}

/* Reads o's function symbols from its file. Leaves none on any failure. */
static void load_object(struct object *o)
{
	o->loaded = true;
	int fd = o->path ? open(o->path, O_RDONLY | O_CLOEXEC) : -1;
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
	/* A string table, every name in it ended inside it. */
	if (str->sh_type != SHT_STRTAB ||
	    !in_file(str->sh_offset, str->sh_size, o->map_len) ||
	    !str->sh_size ||
	    ((const char *)map)[str->sh_offset + str->sh_size - 1])
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

bool weft__symbols_same_func(struct weft__symbols *s, uintptr_t a, uintptr_t b)
{
	const struct segment *g = segment_of(s, a);
	if (!g || g != segment_of(s, b))
		return false;
	struct object *o = &s->objects[g->object];
	const struct func *f = func_at(o, a);
	return f && f == func_at(o, b);
}

#ifdef WEFT_HAVE_LIBDW
/* Every file libdw reads here is opened by weft, O_CLOEXEC from its first
 * instant, and handed over. libdwfl finds and opens files itself, without
 * O_CLOEXEC: a program a task started meanwhile (a stall report or a dump
 * under way) inherited one, even when libdwfl's callbacks marked each as
 * soon as they had it. */

/* Opens path and its ELF; on failure leaves f closed (elf NULL). */
static bool open_elf(struct dwarf_file *f, const char *path)
{
	*f = (struct dwarf_file){ .fd = open(path, O_RDONLY | O_CLOEXEC) };
	if (f->fd < 0)
		return false;
	f->elf = elf_begin(f->fd, ELF_C_READ_MMAP, NULL);
	if (!f->elf)
		close(f->fd);
	return f->elf != NULL;
}

static void close_elf(struct dwarf_file *f)
{
	elf_end(f->elf);
	close(f->fd);
	f->elf = NULL;
}

/* Opens the DWARF in path; on failure leaves f closed. */
static bool open_dwarf(struct dwarf_file *f, const char *path)
{
	if (!open_elf(f, path))
		return false;
	f->dwarf = dwarf_begin_elf(f->elf, DWARF_C_READ, NULL);
	if (!f->dwarf)
		close_elf(f);
	return f->dwarf != NULL;
}

static void close_dwarf(struct dwarf_file *f)
{
	if (!f->dwarf)
		return;
	dwarf_end(f->dwarf);
	f->dwarf = NULL;
	close_elf(f);
}

/* The separate debug file of the build ID id, where Debian's and Fedora's
 * debug packages put it (libdwfl's other places, .gnu_debuglink beside
 * the object and debuginfod, are not searched). */
static bool open_by_build_id(struct dwarf_file *f, const void *id, ssize_t n)
{
	enum { MAX_ID = 64 };
	const unsigned char *b = id;
	char path[sizeof("/usr/lib/debug/.build-id/xx/.debug") + 2 * MAX_ID];
	if (n < 2 || n > MAX_ID)
		return false;
	int used = snprintf(path, sizeof(path),
			    "/usr/lib/debug/.build-id/%02x/", b[0]);
	for (ssize_t i = 1; i < n; i++)
		used += snprintf(path + used, sizeof(path) - (size_t)used,
				 "%02x", b[i]);
	snprintf(path + used, sizeof(path) - (size_t)used, ".debug");
	return open_dwarf(f, path);
}

/* A dwz-compressed debug file keeps what it shares with others in a
 * supplementary file (.gnu_debugaltlink), which libdw would look for on
 * first need, opening it without O_CLOEXEC: so it is found here first.
 * False if it is needed and not found. */
static bool attach_alt(struct object *o)
{
	const char *name;
	const void *id;
	ssize_t n = dwelf_dwarf_gnu_debugaltlink(o->debug.dwarf, &name, &id);
	if (n == 0)
		return true;
	if (n < 0 || (!open_by_build_id(&o->alt, id, n) &&
		      (name[0] != '/' || !open_dwarf(&o->alt, name))))
		return false;
	dwarf_setalt(o->debug.dwarf, o->alt.dwarf);
	return true;
}

/* o's DWARF, from its own file or else from the debug file of its build
 * ID; NULL if it has none, or libdw would have to open files itself. */
static Dwarf *dwarf_of(struct object *o)
{
	if (o->dwarf_tried)
		return o->debug.dwarf;
	o->dwarf_tried = true;
	struct dwarf_file file;
	if (!o->path || !open_elf(&file, o->path))
		return NULL;
	file.dwarf = dwarf_begin_elf(file.elf, DWARF_C_READ, NULL);
	if (file.dwarf) {
		o->debug = file;
	} else {
		const void *id;
		ssize_t n = dwelf_elf_gnu_build_id(file.elf, &id);
		if (n > 0)
			open_by_build_id(&o->debug, id, n);
		close_elf(&file);
	}
	if (o->debug.dwarf && !attach_alt(o))
		close_dwarf(&o->debug);
	return o->debug.dwarf;
}

/* The compile unit whose code holds at, into *cu. dwarf_addrdie looks it
 * up in .debug_aranges, which clang emits only when asked
 * (-gdwarf-aranges): without it, the units are read one by one, each
 * asked whether its ranges hold at. A dump is rare; the walk is cheap
 * beside it. */
static bool unit_at(Dwarf *d, Dwarf_Addr at, Dwarf_Die *cu)
{
	Dwarf_Off off = 0, next;
	size_t header;

	if (dwarf_addrdie(d, at, cu))
		return true;
	while (!dwarf_nextcu(d, off, &next, &header, NULL, NULL, NULL)) {
		if (dwarf_offdie(d, off + header, cu) &&
		    dwarf_haspc(cu, at) == 1)
			return true;
		off = next;
	}
	return false;
}

/* Appends " at file:line" for the code at a, if its object has DWARF line
 * information. */
static void add_line(struct weft__symbols *s, uintptr_t a, char *buf,
		     size_t len)
{
	const struct segment *g = segment_of(s, a);
	struct object *o = g ? &s->objects[g->object] : NULL;
	Dwarf *d = o ? dwarf_of(o) : NULL;
	Dwarf_Addr at = o ? a - o->base : 0;
	Dwarf_Die cu;
	Dwarf_Line *l = d && unit_at(d, at, &cu) ? dwarf_getsrc_die(&cu, at)
						 : NULL;
	int line = 0;
	const char *file = l && !dwarf_lineno(l, &line)
				   ? dwarf_linesrc(l, NULL, NULL)
				   : NULL;
	size_t used = strlen(buf);
	if (file && line > 0 && used < len)
		snprintf(buf + used, len - used, " at %s:%d", file, line);
}

static void close_line_tables(struct object *o)
{
	close_dwarf(&o->debug);
	close_dwarf(&o->alt);
}
#else
static void add_line(struct weft__symbols *s, uintptr_t a, char *buf,
		     size_t len)
{
	/* No libdw: object+offset is for addr2line. */
}

static void close_line_tables(struct object *o)
{
}
#endif

void weft__symbols_free(struct weft__symbols *s)
{
	if (!s)
		return;
	for (int i = 0; i < s->nobjects; i++) {
		close_line_tables(&s->objects[i]);
		free(s->objects[i].funcs);
		free(s->objects[i].path);
		if (s->objects[i].map)
			munmap(s->objects[i].map, s->objects[i].map_len);
	}
	free(s->objects);
	free(s->segments);
	free(s);
}

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
	const char *file = o->path ? o->path : "";
	const char *path = strrchr(file, '/');
	path = path ? path + 1 : file;
	const struct func *f = func_at(o, a);
	const char *cut = f && strlen(f->name) > FUNC_SHOWN ? "..." : "";
	if (f && r == f->addr)
		snprintf(buf, len, "%.*s%s (%s+0x%lx)", FUNC_SHOWN, f->name,
			 cut, path, (unsigned long)(a - o->base));
	else if (f)
		snprintf(buf, len, "%.*s%s+0x%lx (%s+0x%lx)", FUNC_SHOWN,
			 f->name, cut, (unsigned long)(r - f->addr), path,
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
