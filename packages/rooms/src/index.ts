export {
  type AnyRoomDefinition,
  type BroadcastOptions,
  defineRoom,
  MAX_TICK_RATE_HZ,
  type MessageHandlers,
  type Room,
  type RoomClient,
  type RoomDefinition,
  type RoomEvents,
  type RoomMember,
  type RoomStats,
  type SendOptions,
  type StandardIssueLike,
  type StandardResultLike,
  type StandardSchemaLike,
} from './room.js';
export {
  createRoomManager,
  type JoinCallbacks,
  type RoomListing,
  type RoomManager,
  type RoomManagerEvents,
  type RoomManagerOptions,
} from './room-manager.js';
export {
  type CreateSessionInput,
  createSessionRegistry,
  type SessionGrant,
  type SessionPatch,
  type SessionRecord,
  type SessionRegistry,
  type SessionRegistryEvents,
  type SessionRegistryOptions,
  type SessionRejection,
} from './sessions.js';
export {
  createTokenSigner,
  MIN_TOKEN_SECRET_BYTES,
  type TokenPayload,
  type TokenRejection,
  type TokenSigner,
  type TokenSignerOptions,
} from './tokens.js';
