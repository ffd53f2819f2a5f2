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
 */
#ifndef PDWEBHOOK_H
#define PDWEBHOOK_H

#include "common.h"
#include "error.h"
#include "event.h"
#include "router.h"
#include "dedup.h"
#include "receiver.h"

#endif
