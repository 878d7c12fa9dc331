import * as grpc from '@grpc/grpc-js';

/** WhoAmIReply is what the test gRPC service answers: the caller's SPIFFE ID as the server saw it. */
export interface WhoAmIReply {
  caller: string | null;
}

const json = {
  serialize: (v: unknown): Buffer => Buffer.from(JSON.stringify(v)),
  deserialize: (b: Buffer): unknown => JSON.parse(b.toString('utf8')) as unknown,
};

/** echoService is a one-method gRPC service with JSON messages, so tests need no .proto file. */
export const echoService = {
  whoAmI: {
    path: '/test.Echo/WhoAmI',
    requestStream: false,
    responseStream: false,
    requestSerialize: json.serialize,
    requestDeserialize: json.deserialize,
    responseSerialize: json.serialize,
    responseDeserialize: json.deserialize,
  },
} satisfies grpc.ServiceDefinition;

/** callWhoAmI calls `path` (default the echo service's WhoAmI) on `client` with a 5 s deadline and resolves with the reply. */
export function callWhoAmI(client: grpc.Client, path: string = echoService.whoAmI.path): Promise<WhoAmIReply> {
  return new Promise((resolve, reject) => {
    client.makeUnaryRequest(
      path,
      echoService.whoAmI.requestSerialize,
      (b: Buffer) => echoService.whoAmI.responseDeserialize(b) as WhoAmIReply,
      {},
      new grpc.Metadata(),
      { deadline: Date.now() + 5000 },
      (err, value) => {
        if (err) reject(err);
        else resolve(value as WhoAmIReply);
      },
    );
  });
}
