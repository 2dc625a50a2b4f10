/*
 * output.h: what output.c and its output-*.c share and no other module
 * sees: one instance's capture state, and the calls from the capturing
 * (output.c) down to its sinks (output-file.c, output-journal.c,
 * output-follow.c). The sinks never call output.c, so the output modules
 * form no cycle. Included only by output*.c; what other modules call is in
 * ward.h's output section.
 */
#ifndef WARD_OUTPUT_H
#define WARD_OUTPUT_H

#define OUTPUT_LINE_MAX	8192	/* journal: longer lines are several entries */

/* An open log file; shared by both streams when they name the same path. */
struct output_file {
	const char	*path;		/* the config's */
	const char	*base;		/* path's last component */
	int		 fd;		/* -1: not open */
	int		 dirfd;		/* its directory (O_PATH); -1: not open */
	int		 as_user;	/* others can write there: act as the
					   payload's user (output_file_dir) */
	uint64_t	 size;		/* for rotation */
	int		 failed;	/* a write failed: said once, not per write */
	uint32_t	 opens;		/* times opened: tells reopened fds apart
					   (output-state.c, state.c's tags) */
	int		 sock;		/* wardd's own stdout, a socket: written
					   with MSG_DONTWAIT (output-file.c) */
};

struct output_follow;		/* output-follow.c's */
struct output_hold;		/* output.c's */

struct output_stream {
	struct output		*out;
	int			 which;		/* OUTPUT_STDOUT or OUTPUT_STDERR */
	int			 fd;		/* read end; -1 when closed */
	int			 pending;	/* made for a spawn not yet done */
	int			 big;		/* its pipe grew (output.c) */
	ev_io			 rw;
	struct output_hold	*hold;		/* not read: waits for a follower
						   (output.c); NULL mostly */

	/* The ring: the last ring_bytes; grows to that as output comes
	 * (output-ring.c). With the fd store, in a memfd of that size whose
	 * header says where it starts and how much it holds, kept in the
	 * store itself: what was read survives a crash of wardd. */
	int			 ring_fd;	/* the memfd, or -1: malloc'd */
	struct output_ring_hdr	*ring_hdr;	/* its header, mapped with it */
	char			*ring;
	size_t			 ring_cap;
	size_t			 ring_start;	/* oldest byte */
	size_t			 ring_len;

	struct output_file	*file;		/* NULL: no log file */

	/* Lines, for drop mode's rate and for the journal. */
	int			 mid_line;	/* the last byte read was not '\n' */
	int			 dropping;	/* the current line is dropped */
	ev_tstamp		 window;	/* start of the current second */
	uint32_t		 window_lines;
	uint64_t		 dropped;	/* lines: over the rate, or refused
						   by the journal */
	char			*jline;		/* partial line for the journal */
	size_t			 jlen;

	/* An incomplete UTF-8 sequence held back from followers. */
	char			 carry[4];
	size_t			 ncarry;
	LIST_HEAD(, output_follow) followers;
};

/* One instance's capture: allocated by output_get, freed by output_free. */
struct output {
	struct instance		*inst;
	int			 reserved;	/* output_reserve ran */
	uint64_t		 ring_reserved;	/* in the owner's ring budget */
	struct output_stream	 s[OUTPUT_NSTREAMS];
	struct output_file	 files[OUTPUT_NSTREAMS];
};

/*
 * Is a pipe of o still open (its files stay open while one is)? Inline: the
 * sinks ask it too, and they never call output.c, which calls them.
 */
static inline int
output_streams_open(const struct output *o)
{
	int k;

	for (k = 0; k < OUTPUT_NSTREAMS; k++) {
		if (o->s[k].fd != -1)
			return 1;
	}
	return 0;
}

/* output.c */
struct output *output_get(struct instance *);
void	 output_pipe_adopt(struct output_stream *);

/* output-ring.c */
void	 output_ring_append(struct output_stream *, const char *, size_t);
char	*output_ring_room(struct output_stream *, size_t *, size_t);
void	 output_ring_commit(struct output_stream *, size_t);
void	 output_ring_free(struct output_stream *);
int	 output_ring_adopt(struct output_stream *, int);

/* output-file.c */
void	 output_file_init(struct output *);
int	 output_file_open_all(struct output *, struct ward_err *);
void	 output_file_close_all(struct output *);
void	 output_file_write(struct output *, struct output_file *, const char *,
	    size_t);

/* output-journal.c */
void	 output_journal_lines(struct output_stream *, const char *, size_t);
void	 output_journal_flush(struct output_stream *);

/* output-follow.c */
int	 output_follow_add(struct conn *, struct output_stream *, int,
	    struct ward_err *);
void	 output_follow_remove(struct conn *, struct output_stream *);
void	 output_follow_free_all(struct output_stream *);
void	 output_follow_notify(struct output_stream *, const char *, size_t);
size_t	 output_follow_backlog(const struct output_stream *);
void	 output_follow_shed(struct output_stream *, size_t);
void	 output_follow_save(msgpack_packer *, const struct output_stream *);
void	 output_follow_restore(const msgpack_object *, struct output_stream *);

#endif
