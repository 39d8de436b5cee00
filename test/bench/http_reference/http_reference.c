/*
 * http_reference: a bare synchronous HTTP POST callable from SQL, and nothing else: no
 * license, routing, key, decryption, retry or accounting. It is the reference the ai_chat
 * benchmark (issue 4 section 8) compares against besides bare_post: "as cheap as a bare
 * synchronous HTTP extension that does no accounting at all". Benchmark use only: the
 * transfer is not interruptible and the response is returned as it is.
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/builtins.h"

#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>

PG_MODULE_MAGIC;
PG_FUNCTION_INFO_V1(bench_http_post);

/* One easy handle per backend, kept: the connection to the server is reused, as bare_post's. */
static CURL *easy = NULL;
static struct curl_slist *headers = NULL;

/* The response body; grown with malloc, since libcurl's callback must not ERROR. */
static char *received = NULL;
static size_t received_used = 0;
static size_t received_capacity = 0;

static size_t
append_received(char *data, size_t size, size_t count, void *unused)
{
	size_t		length = size * count;

	if (received_used + length > received_capacity)
	{
		size_t		capacity = received_capacity ? received_capacity : 4096;
		char	   *grown;

		while (capacity < received_used + length)
			capacity *= 2;
		grown = realloc(received, capacity);
		if (grown == NULL)
			return 0;			/* libcurl reports CURLE_WRITE_ERROR */
		received = grown;
		received_capacity = capacity;
	}
	memcpy(received + received_used, data, length);
	received_used += length;
	return length;
}

/* bench_http_post(url text, body text) RETURNS text: the response body. */
Datum
bench_http_post(PG_FUNCTION_ARGS)
{
	char	   *url = text_to_cstring(PG_GETARG_TEXT_PP(0));
	text	   *body = PG_GETARG_TEXT_PP(1);
	CURLcode	status;

	if (easy == NULL)
	{
		if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK || (easy = curl_easy_init()) == NULL)
			ereport(ERROR, (errmsg("http_reference: libcurl could not be initialised")));
		headers = curl_slist_append(headers, "Content-Type: application/json");
		headers = curl_slist_append(headers, "Authorization: Bearer sk-bench");
	}
	received_used = 0;
	curl_easy_setopt(easy, CURLOPT_URL, url);
	curl_easy_setopt(easy, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) VARSIZE_ANY_EXHDR(body));
	curl_easy_setopt(easy, CURLOPT_POSTFIELDS, VARDATA_ANY(body));
	curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, append_received);
	curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, 10000L);
	status = curl_easy_perform(easy);
	if (status != CURLE_OK)
		ereport(ERROR, (errmsg("http_reference: POST %s failed: %s", url, curl_easy_strerror(status))));
	PG_RETURN_TEXT_P(cstring_to_text_with_len(received ? received : "", (int) received_used));
}
