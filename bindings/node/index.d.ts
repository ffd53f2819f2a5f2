// Type declarations for pdwebhook (Node.js binding of libpdwebhook).
import type { IncomingMessage, ServerResponse } from 'node:http';

export type HeaderInput =
  | Record<string, string | string[] | undefined>
  | Array<[string | Buffer, string | Buffer]>
  | string[] // node's rawHeaders: [name, value, name, value, ...]
  | Iterable<[string, string]>;

export type Body = Buffer | Uint8Array | string | null | undefined;

export interface ReceiverOptions {
  /** Accepted user/password pairs (several, for rotation): [[user, password]] or [{ user, password }]. */
  credentials?: Array<[string, string] | { user: string; password: string }> | [string, string];
  queryToken?: string | null;
  queryTokenName?: string | null;
  insecureNoAuth?: boolean;
  realm?: string | null;
  /** Body limit in bytes; 0: 1 MiB. */
  maxBody?: number;
  maxDepth?: number;
  /** 0: 401; 403 is the other sensible choice. */
  wrongCredentialsStatus?: number;
  /** 0: 200; 500 makes Pipedrive retry (ban risk). */
  handlerErrorStatus?: number;
  retryAfterSeconds?: number;
  allowMissingContentType?: boolean;
  disableDedup?: boolean;
  dedupCapacity?: number;
  dedupTtlMs?: number;
  inflightLeaseMs?: number;
  /** Told of every handler that throws; default: console.error. */
  onHandlerError?: (error: HandlerError) => void;
}

/** One webhook event, v1 or v2, in one vocabulary. Valid only while its handler runs. */
export class Event {
  readonly version: 1 | 2;
  readonly action: string;
  readonly deliveredAction: string;
  readonly object: string;
  readonly name: string;
  readonly deliveredName: string;
  readonly entityId: string | null;
  readonly eventId: string | null;
  readonly webhookId: string | null;
  readonly companyId: string | null;
  readonly userId: string | null;
  readonly correlationId: string | null;
  readonly changeSource: string | null;
  readonly attempt: number;
  readonly timestampMs: number | null;
  readonly timestamp: Date | null;
  readonly isBulk: boolean;
  readonly isMerge: boolean;
  readonly mergedFromId: string | null;
  readonly mergedToId: string | null;
  readonly deliveryKey: string;
  readonly changed: readonly string[];
  hasChanged(field: string): boolean;
  readonly body: Buffer;
  readonly payload: Record<string, unknown>;
  readonly data: Record<string, unknown> | null;
  readonly previous: Record<string, unknown> | null;
}

export type Handler = (event: Event) => void;

export class HandlerError extends Error {
  readonly pattern: string;
  readonly handler: Handler;
  readonly error: unknown;
  readonly eventName: string | null;
  readonly deliveryKey: string | null;
}

export class PdwError extends Error {
  readonly code: number;
  readonly pdwName: string;
  readonly detail: string;
  readonly offset: number;
}

export interface Response {
  status: number;
  headers: Array<[string, string]>;
  body: Buffer;
  reason: number;
  reasonName: string;
  event: string;
  deliveryKey: string;
  webhookId: string;
  attempt: number;
  handlersMatched: number;
  handlersFailed: number;
  handlerRc: number;
  errors: HandlerError[];
  detail: string;
  ok: boolean;
  /** Set by createHandler (the C request has no peer). */
  peer: string | null;
}

export class Receiver {
  constructor(options?: ReceiverOptions);
  readonly maxBody: number;
  readonly handlerCount: number;
  lastErrors: HandlerError[];
  on(pattern: string, handler: Handler): this;
  on(pattern: string, options: { changed?: string }, handler: Handler): this;
  onUnhandled(handler: Handler): this;
  onHandlerError(fn: (error: HandlerError) => void): this;
  handle(method: string, headers: HeaderInput, body: Body, query?: string | null): Response;
  checkHead(method: string, headers: HeaderInput, query?: string | null): Response | null;
  close(): void;
}

export interface HandlerOptions {
  /** Serve only this path; others go to next() (Express) or get 404. */
  path?: string | null;
  onResponse?: (response: Response, peer: string | null) => void;
}

export type RequestHandler = (req: IncomingMessage & { body?: unknown }, res: ServerResponse,
  next?: (err?: unknown) => void) => void;

export function createHandler(receiver: Receiver, options?: HandlerOptions): RequestHandler;
export const express: typeof createHandler;
export function version(): string;
export function versionNumber(): number;
export function strerror(code: number): string;
export function errName(code: number): string;
export function errHttpStatus(code: number): number;
export function errorCodes(): Record<string, number>;
export function load(path?: string): string;
export function libraryPath(): string | null;
export const SOVERSION: number;
export const LIBRARY_ENV: string;
export const __version__: string;
