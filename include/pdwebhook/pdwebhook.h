/**
 * @file pdwebhook/pdwebhook.h
 * @brief pdwebhook: receive Pipedrive webhooks correctly. The core library's header.
 *
 * The core (libpdwebhook, `pkg-config pdwebhook`, `pdwebhook::pdwebhook`) starts no
 * thread and opens no file or socket:
 *
 * - pdwebhook/common.h: allocator, pdw_free(), pdw_version()
 * - pdwebhook/error.h: codes, pdw_strerror(), ::pdw_error
 * - pdwebhook/event.h: the event (v1 and v2 in one vocabulary)
 * - pdwebhook/router.h: patterns to callbacks
 * - pdwebhook/dedup.h: duplicate deliveries
 * - pdwebhook/receiver.h: the request pipeline and status policy
 * - pdwebhook/health.h: the ban model (failed first attempts, predicted bans, losses)
 * - pdwebhook/allow.h: the source-address allowlist
 * - pdwebhook/recency.h: stale events (an older change arriving after a newer one)
 * - pdwebhook/reconcile.h: reconciled events (what Pipedrive dropped, re-read from its API)
 * - pdwebhook/pipedrive.h: Pipedrive's protocol constants (timeout, retries, ban, limits)
 * - pdwebhook/sys/dedup_store.h (not included here): the dedup store vtable, for people
 *   who write a store
 *
 * The other libraries, each with its own header, pkg-config file and CMake component:
 * - pdwebhook/durable.h (libpdwebhook-durable): the spool, the worker, dead letters
 * - pdwebhook/redis.h (libpdwebhook-redis): scale-out on Redis
 * - pdwebhook/subscriptions.h (libpdwebhook-subscriptions): plan webhook subscriptions
 */
#ifndef PDWEBHOOK_H
#define PDWEBHOOK_H

#include "common.h"
#include "error.h"
#include "event.h"
#include "router.h"
#include "dedup.h"
#include "receiver.h"
#include "health.h"
#include "allow.h"
#include "recency.h"
#include "reconcile.h"
#include "pipedrive.h"

#endif
