/**
 * @file pdwebhook/pdwebhook.h
 * @brief pdwebhook: receive Pipedrive webhooks correctly. Include this one header.
 *
 * - pdwebhook/common.h: allocator, pdw_free(), pdw_version()
 * - pdwebhook/error.h: codes, pdw_strerror(), ::pdw_error
 * - pdwebhook/event.h: the event (v1 and v2 in one vocabulary)
 * - pdwebhook/router.h: patterns to callbacks
 * - pdwebhook/dedup.h: duplicate deliveries
 * - pdwebhook/receiver.h: the request pipeline and status policy
 * - pdwebhook/subscriptions.h: plan and compare Pipedrive webhook subscriptions
 * - pdwebhook/spool.h: the durable journal of accepted deliveries
 * - pdwebhook/health.h: the ban model (failed first attempts, predicted bans, losses)
 * - pdwebhook/worker.h: hand spooled deliveries on (order, retries, dead letters)
 * - pdwebhook/redis.h: scale-out on Redis (shared dedup, event stream, consumers); its
 *   functions return ::PDW_ENOTBUILT when the library was built without hiredis
 */
#ifndef PDWEBHOOK_H
#define PDWEBHOOK_H

#include "common.h"
#include "error.h"
#include "event.h"
#include "router.h"
#include "dedup.h"
#include "receiver.h"
#include "subscriptions.h"
#include "spool.h"
#include "health.h"
#include "worker.h"
#include "redis.h"

#endif
