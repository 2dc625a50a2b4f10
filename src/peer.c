/*
 * peer.c: who is on the other end of a connection, and the one decision of
 * what a peer may do (peer_may). Every module that asks "may this caller
 * see, touch or make this?" asks here, so the rule lives in one place: an
 * admin (root, or wardd's own uid) may do anything; any other peer sees and
 * touches only what it owns, never calls admin-only commands and never
 * runs anything as someone else. wardd itself is a peer too (peer_self),
 * for what it does on its own behalf (declared programs).
 *
 * layer: transport (uses budget.c's notion of an admin uid, nothing above)
 */
#include "config.h"

#include <sys/socket.h>

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ward.h"

/*
 * Fill p from a connected socket's credentials. groups is taken (freed by
 * peer_clear); fd stays the connection's, kept only for SO_PEERPIDFD.
 */
void
peer_init(struct peer *p, int fd, uid_t uid, gid_t gid, pid_t pid,
    gid_t *groups, int ngroups)
{
	memset(p, 0, sizeof *p);
	p->fd = fd;
	p->uid = uid;
	p->gid = gid;
	p->pid = pid;
	p->groups = groups;
	p->ngroups = ngroups;
	p->admin = budget_admin(uid);
}

void
peer_clear(struct peer *p)
{
	free(p->groups);
	p->groups = NULL;
	p->ngroups = 0;
}

/* wardd acting for itself: an admin with its own ids and no socket. */
const struct peer *
peer_self(void)
{
	static struct peer self;

	self.fd = -1;
	self.uid = opts.uid;
	self.gid = getgid();
	self.pid = getpid();
	self.admin = 1;
	return &self;
}

/*
 * The authorization decision. owner is the uid the verb is about: the
 * instance's owner (PEER_SEE), the uid to run as (PEER_RUN_AS); unused for
 * PEER_ADMIN. A peer that may not see an instance is told it does not
 * exist (cmd.c), so PEER_SEE is also what hides others' instances.
 */
int
peer_may(const struct peer *p, enum peer_verb verb, uid_t owner)
{
	if (p->admin)
		return 1;
	switch (verb) {
	case PEER_SEE:
	case PEER_RUN_AS:
		return p->uid == owner;
	case PEER_ADMIN:
		return 0;
	}
	return 0;
}
