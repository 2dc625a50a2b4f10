/*
 * shellwords.h: splitting a command line into words the way Python's
 * shlex.split does (supervisord's command=), shared by wardd's config
 * reader and wardctl's shell so that both agree.
 */
#ifndef SHELLWORDS_H
#define SHELLWORDS_H

int	shellwords_split(char *, char **, int, const char **);

#endif
