export {
  defineEntityType,
  type EntityType,
  type EntityValues,
  type FieldName,
  type FieldValue,
  MAX_ENTITY_FIELDS,
} from './entity-type.js';
export {
  createReplica,
  type Replica,
  type ReplicaEntity,
  type ReplicaEvents,
  type ReplicaOptions,
} from './replica.js';
export {
  type ClientId,
  createReplicationServer,
  type ReplicationServer,
  type ReplicationServerOptions,
} from './server.js';
export { createWorld, type Entity, type World, type WorldOptions } from './world.js';
