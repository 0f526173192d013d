/*
 * pgwire.h - the message types of the PostgreSQL frontend/backend protocol
 * 3.0 that the tracers read, by name, for the BPF programs and the user side
 * alike.  Every message but the startup packet and the SSL/GSS requests is a
 * type byte and an int32 length that counts itself.
 */
#ifndef PGSCOPE_PGWIRE_H
#define PGSCOPE_PGWIRE_H

/* client to server */
#define PGS_FE_QUERY 'Q'		/* simple Query: text */
#define PGS_FE_PARSE 'P'		/* statement name, text, parameter types */
#define PGS_FE_BIND 'B'			/* portal name, statement name, formats, parameters */
#define PGS_FE_EXECUTE 'E'		/* portal name, row limit */
#define PGS_FE_DESCRIBE 'D'
#define PGS_FE_CLOSE 'C'
#define PGS_FE_SYNC 'S'
#define PGS_FE_FLUSH 'H'
#define PGS_FE_FUNCTION_CALL 'F'
#define PGS_FE_TERMINATE 'X'
#define PGS_FE_COPY_DATA 'd'
#define PGS_FE_COPY_DONE 'c'
#define PGS_FE_COPY_FAIL 'f'
#define PGS_FE_PASSWORD 'p'		/* and the other authentication responses */

/* server to client */
#define PGS_BE_READY 'Z'		/* ReadyForQuery: length 5, transaction status */
#define PGS_BE_ERROR 'E'		/* ErrorResponse: fields, the first one the severity */
#define PGS_BE_COMMAND_COMPLETE 'C'
#define PGS_BE_PORTAL_SUSPENDED 's'
#define PGS_BE_EMPTY_QUERY 'I'
#define PGS_ERR_FIELD_SEVERITY 'S'
/* the one-byte answers to SSLRequest and GSSENCRequest: go ahead */
#define PGS_BE_SSL_YES 'S'
#define PGS_BE_GSS_YES 'G'

#endif
