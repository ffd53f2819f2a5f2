/**
 * @file pdwebhook/pipedrive.h
 * @brief Pipedrive's webhook protocol in numbers: the facts the library, the tools and the
 * tests are built on, each written once.
 *
 * Sources: Pipedrive's "Guide for Webhooks" and "Guide for Webhooks v2"
 * (pipedrive.readme.io), "Webhooks v2 migration guide", the developers changelog; gathered
 * in the project's PIPEDRIVE.md. Pipedrive may change them: they are facts of the service,
 * not choices of this library (those are the defaults of the options structs, which are
 * derived from these where the protocol dictates them).
 *
 * Durations are in milliseconds, as every duration in pdwebhook's API.
 */
#ifndef PDWEBHOOK_PIPEDRIVE_H
#define PDWEBHOOK_PIPEDRIVE_H

/**
 * A delivery succeeds with any 2xx answered within this time (10 s); anything else, or no
 * answer in time, is a failure. (Guide for Webhooks.)
 */
#define PDW_PIPEDRIVE_TIMEOUT_MS 10000

/** Retries after a failed first attempt: 3. (Guide for Webhooks.) */
#define PDW_PIPEDRIVE_RETRIES 3

/** Attempts of one delivery in all: the first one and ::PDW_PIPEDRIVE_RETRIES retries. */
#define PDW_PIPEDRIVE_MAX_ATTEMPTS (1 + PDW_PIPEDRIVE_RETRIES)

/** The first retry comes 3 s after the failed first attempt. (Guide for Webhooks.) */
#define PDW_PIPEDRIVE_RETRY1_DELAY_MS 3000
/** The second retry comes 30 s after the first retry failed. (Guide for Webhooks.) */
#define PDW_PIPEDRIVE_RETRY2_DELAY_MS 30000
/** The third and last retry comes 150 s after the second retry failed. (Guide for
 *  Webhooks.) */
#define PDW_PIPEDRIVE_RETRY3_DELAY_MS 150000

/**
 * The retry horizon: the last retry comes this long (3 + 30 + 150 s = 183 s, about 3
 * minutes) after a failed first attempt. A receiver down for longer loses the deliveries
 * of that time, with no ban (re-read them through the API).
 */
#define PDW_PIPEDRIVE_RETRY_HORIZON_MS                                                        \
    (PDW_PIPEDRIVE_RETRY1_DELAY_MS + PDW_PIPEDRIVE_RETRY2_DELAY_MS +                          \
     PDW_PIPEDRIVE_RETRY3_DELAY_MS)

/**
 * Each failed *first* attempt adds 1 to the webhook's ban counter (failed retries add
 * nothing); at 10 the webhook is banned. (Guide for Webhooks.)
 */
#define PDW_PIPEDRIVE_BAN_THRESHOLD 10

/**
 * A ban lasts 30 minutes; then the webhook is reactivated with its counter at 0. Events
 * during a ban are lost for good. (Guide for Webhooks.)
 */
#define PDW_PIPEDRIVE_BAN_MS (30 * 60 * 1000)

/**
 * A webhook without a successful delivery for 3 consecutive days is deleted. (Guide for
 * Webhooks.)
 */
#define PDW_PIPEDRIVE_DELETE_AFTER_MS (3 * 24 * 60 * 60 * 1000)

/** At most 40 webhooks per user (all URLs together). (Guide for Webhooks.) */
#define PDW_PIPEDRIVE_MAX_WEBHOOKS_PER_USER 40

/** v1 bodies: top-level `retry` of a first attempt (retries are 1 to 3). */
#define PDW_PIPEDRIVE_V1_FIRST_RETRY 0

/** v2 bodies: `meta.attempt` of a first attempt (retries are 2 to 4). */
#define PDW_PIPEDRIVE_V2_FIRST_ATTEMPT 1

#endif
