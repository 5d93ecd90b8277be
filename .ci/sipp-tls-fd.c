/* Preloaded into Debian 13's SIPp by .ci/sipp-tls (and nowhere else).
 *
 * That SIPp (3.7.3, built with wolfSSL 5.7) attaches each TLS socket through a socket BIO
 * (SSL_set_bio), then asks SSL_get_fd() for the descriptor before every SSL_write. Under
 * wolfSSL, SSL_get_fd() of an SSL whose descriptor came in a BIO is -1, so SIPp never writes:
 * the handshake completes, and every SIP message stays in SIPp's output buffer. This
 * wolfSSL_get_fd() answers with the write BIO's descriptor when the library has none. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stddef.h>

typedef struct WOLFSSL WOLFSSL;
typedef struct WOLFSSL_BIO WOLFSSL_BIO;
WOLFSSL_BIO *wolfSSL_SSL_get_wbio(const WOLFSSL *ssl);
long wolfSSL_BIO_get_fd(WOLFSSL_BIO *bio, int *fd);

int wolfSSL_get_fd(const WOLFSSL *ssl)
{
    static int (*library_get_fd)(const WOLFSSL *);
    if (library_get_fd == NULL) {
        library_get_fd = (int (*)(const WOLFSSL *))dlsym(RTLD_NEXT, "wolfSSL_get_fd");
    }
    int fd = library_get_fd != NULL ? library_get_fd(ssl) : -1;
    if (fd < 0 && ssl != NULL) {
        WOLFSSL_BIO *bio = wolfSSL_SSL_get_wbio(ssl);
        int from_bio = -1;
        if (bio != NULL && wolfSSL_BIO_get_fd(bio, &from_bio) >= 0 && from_bio >= 0) {
            fd = from_bio;
        }
    }
    return fd;
}
