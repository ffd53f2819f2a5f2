/**
 * @file pdwebhook/durable.h
 * @brief libpdwebhook-durable: answer 2xx only for what is on disk, hand it on later.
 *
 * Link with `pkg-config --libs pdwebhook-durable` or `pdwebhook::durable`; it brings the
 * core library (pdwebhook/pdwebhook.h) along. This library starts threads and writes
 * files:
 * - pdwebhook/spool.h: the durable journal of accepted deliveries (group commit)
 * - pdwebhook/worker.h: hand spooled deliveries on (order, retries, dead letters)
 * - pdwebhook/deadletter.h: the file of deliveries given up
 * - pdwebhook/intake.h: all of it as one object for a server: receiver + journal + worker
 *   + group commit, answering through a completion callback
 */
#ifndef PDWEBHOOK_DURABLE_H
#define PDWEBHOOK_DURABLE_H

#include "pdwebhook.h"
#include "spool.h"
#include "worker.h"
#include "deadletter.h"
#include "intake.h"

#endif
