// Unary gRPC calls for the closed loop, over one @grpc/grpc-js channel.
import * as grpc from '@grpc/grpc-js';
import type { Attempt } from './closed-loop.ts';

/** UnaryMethod is the method to call, with its (de)serializers. */
export interface UnaryMethod {
  path: string;
  requestSerialize: (value: unknown) => Buffer;
  responseDeserialize: (bytes: Buffer) => unknown;
}

/** grpcAttempt returns one unary call of `method` on `client` for runClosedLoop. */
export function grpcAttempt(client: grpc.Client, method: UnaryMethod, message: unknown, timeoutMs = 5000): Attempt {
  return () =>
    new Promise<boolean>((resolve, reject) => {
      client.makeUnaryRequest(
        method.path,
        method.requestSerialize,
        method.responseDeserialize,
        message,
        new grpc.Metadata(),
        { deadline: Date.now() + timeoutMs },
        (err) => {
          if (err) reject(err);
          else resolve(true);
        },
      );
    });
}
