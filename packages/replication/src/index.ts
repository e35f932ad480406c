export {
  type DeadReckoning,
  defineEntityType,
  type EntityType,
  type EntityTypeOptions,
  type EntityValues,
  type FieldName,
  type FieldValue,
  MAX_ENTITY_FIELDS,
} from './entity-type.js';
export {
  createFilterInterest,
  createGridInterest,
  createManualInterest,
  type GridInterest,
  type GridInterestOptions,
  type GridInterestStats,
  type Interest,
  type ManualInterest,
  type Point,
  unionInterest,
  type View,
} from './interest.js';
export {
  createReplica,
  type Replica,
  type ReplicaEntity,
  type ReplicaEvents,
  type ReplicaOptions,
} from './replica.js';
export {
  createRpcClient,
  createRpcRegistry,
  createRpcServer,
  defineRpc,
  type Rpc,
  type RpcClient,
  type RpcClientEvents,
  type RpcClientHandler,
  type RpcClientOptions,
  type RpcDirection,
  type RpcOptions,
  type RpcRateLimit,
  type RpcRegistry,
  type RpcRejections,
  type RpcServer,
  type RpcServerEvents,
  type RpcServerHandler,
  type RpcServerOptions,
  type RpcStats,
} from './rpc.js';
export {
  type ClientStats,
  createReplicationServer,
  type ReplicationServer,
  type ReplicationServerOptions,
  type TypeProfile,
} from './server.js';
export { type ClientId, createWorld, type Entity, type World, type WorldOptions } from './world.js';
