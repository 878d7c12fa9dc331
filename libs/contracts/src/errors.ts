import type { status } from '@grpc/grpc-js';

/** GrpcStatusName is the name of a gRPC status code, e.g. "NOT_FOUND". */
export type GrpcStatusName = keyof typeof status;

/**
 * ErrorSpec is one row of a service's error table: the HTTP status it is
 * answered with, the gRPC status a gRPC API answers it with, and what it
 * means for the caller (the message of each answer says what to fix).
 */
export interface ErrorSpec {
  /** http is the HTTP status of the answer. */
  readonly http: number;
  /** grpc is the gRPC status of the answer, where the service has a gRPC API; the others name the nearest one, for clients that translate. */
  readonly grpc: GrpcStatusName;
  /** meaning says in one line what the code tells the caller. */
  readonly meaning: string;
}

/** ErrorTable maps every code a service answers with to its ErrorSpec. */
export type ErrorTable = Readonly<Record<string, ErrorSpec>>;

/** ErrorBody is the JSON body of every error answer of every shop service: a stable code and a message that says what to fix. */
export interface ErrorBody {
  code: string;
  message: string;
}

/**
 * SHARED_CODE_EXCEPTIONS lists the codes that two services answer with
 * different HTTP statuses, each with the reason; any other code shared by
 * two tables means the same status everywhere (a test checks it).
 */
export const SHARED_CODE_EXCEPTIONS: Readonly<Record<string, string>> = Object.freeze({
  UNKNOWN_PRODUCT:
    'order answers 400: an item of the order body names a product that is not in the catalogue (the request is wrong, /orders exists); inventory answers 404: the product in the path is the resource asked for, and it does not exist',
});
