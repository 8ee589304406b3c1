/**
 * ovtp: end-to-end encrypted messages, files and chat between machines that
 * know each other's keys. This module is the library under the `ovtp` CLI:
 * identities and key files, the trust files (authorized_keys, known_hosts),
 * a client and a server speaking the ovtp protocol, file transfers, signed
 * multi-recipient envelopes, chat, and sealed files for data at rest.
 *
 * Wire-level pieces (framing, the Noise handshake, message codecs) stay
 * internal: docs/protocol.md specifies them for anyone writing another
 * client.
 *
 * @example A server and a client on one machine
 * ```ts
 * import { fingerprint, generateIdentity, OvtpClient, responseText, serve } from "@ovtp/ovtp";
 * import assert from "node:assert/strict";
 *
 * const serverIdentity = await generateIdentity();
 * const clientIdentity = await generateIdentity();
 * const server = serve({
 *   identity: serverIdentity,
 *   hostname: "127.0.0.1",
 *   port: 0,
 *   // Anyone may connect: a real server checks authorized_keys.
 *   authorize: async (key) => ({ name: await fingerprint(key) }),
 *   handler: (request) => ({ status: "ok", response: `got ${request.body.length} bytes` }),
 * });
 * const client = await OvtpClient.connect({
 *   hostname: "127.0.0.1",
 *   port: server.addr.port,
 *   identity: clientIdentity,
 *   verifyHost: () => {}, // Trusts any server: a real client checks known_hosts.
 * });
 * assert.equal(responseText(await client.request("hello")), "got 5 bytes");
 * client.close();
 * await server.close();
 * ```
 *
 * @module
 */

export { type ErrorKind, OvtpError, type OvtpErrorOptions } from "./lib/errors.ts";
export {
  fingerprint,
  formatPublicKey,
  generateIdentity,
  type Identity,
  parsePublicKey,
  type PublicKey,
  type PublicKeyLine,
  samePublicKey,
} from "./lib/identity/keys.ts";
export {
  type AddKeyResult,
  type CreateIdentityOptions,
  Keystore,
  KEYSTORE_FILES,
  type LoadIdentityOptions,
  type PassphraseSource,
  type UnlockedIdentity,
} from "./lib/identity/keystore.ts";
export {
  type AuthorizedKey,
  type AuthorizedKeys,
  duplicateNames,
  formatAuthorizedKey,
  type LineError,
  parseAuthorizedKeys,
} from "./lib/trust/authorized_keys.ts";
export { formatKnownHost, type KnownHost, parseKnownHosts } from "./lib/trust/known_hosts.ts";
export {
  type Contact,
  contactNameProblem,
  type Contacts,
  parseContacts,
} from "./lib/trust/contacts.ts";
export { type KeyChange, type KeyOptions, type Rate } from "./lib/trust/key_options.ts";
export { type Limiter, type RateDecision } from "./lib/server/rate_limiter.ts";
export { authorizedKeysAuthorizer } from "./lib/trust/authorizer.ts";
export {
  type HostBlock,
  type HostSettings,
  parseHostConfig,
  settingsFor,
  type UnknownHostPolicy,
} from "./lib/client/host_config.ts";
export {
  type HostTrustOptions,
  knownHostsVerifier,
  UnknownHostError,
} from "./lib/trust/host_trust.ts";
export { type LogFields, type Logger, SILENT_LOGGER } from "./lib/logger.ts";
export { type Peer } from "./lib/identity/peer.ts";
export {
  type AuthorizeOptions,
  type Authorizer,
  createStreamServer,
  DEFAULT_PORT,
  type FunctionCall,
  type FunctionHandler,
  type Grant,
  type OvtpServer,
  type ReceivedFile,
  type Reply,
  type Request,
  type RequestHandler,
  requestText,
  serve,
  type ServeOptions,
  type StreamServer,
} from "./lib/server/server.ts";
export {
  type ConnectOptions,
  OvtpClient,
  type Response,
  responseText,
} from "./lib/client/client.ts";
export { type ByteStream } from "./lib/channel/channel.ts";
export { VERSION } from "./lib/version.ts";
export {
  type BackendChoice,
  type BackendInfo,
  type BackendName,
  cryptoBackendInfo,
  selectCryptoBackend,
} from "./lib/crypto/mod.ts";
export { execFunction, execHandler, type ExecOptions } from "./lib/services/exec/exec_handler.ts";
export { ExecSlots, type ExecSlotsOptions } from "./lib/services/exec/exec_slots.ts";
export {
  directorySources,
  type FileSource,
  pathSource,
  type ReadOptions,
  streamSource,
} from "./lib/services/transfer/sources.ts";
export {
  type SendFileOptions,
  type SentFile,
  type TransferProgress,
} from "./lib/services/transfer/sender.ts";
export {
  Inbox,
  INBOX_STATE_DIR,
  type InboxOptions,
  type StoredFile,
} from "./lib/services/transfer/inbox.ts";
export { type FetchedFile, type FetchOptions } from "./lib/services/transfer/fetcher.ts";
export {
  type FetchedFolder,
  type FolderFetchOptions,
} from "./lib/services/transfer/fetch_folder.ts";
export { type ListEntry } from "./lib/services/transfer/download_messages.ts";
export { ServedFolder } from "./lib/services/transfer/served_folder.ts";
export {
  EnvelopeError,
  type EnvelopeFailure,
  type EnvelopeHeader,
  type OpenedEnvelope,
  openEnvelope,
  type OpenOptions,
  parseEnvelope,
  ReplayGuard,
  sealEnvelope,
  type SealOptions,
} from "./lib/envelope/envelope.ts";
export {
  type ChatEvents,
  type ChatMessage,
  ChatSession,
  type JoinOptions,
} from "./lib/services/chat/chat_session.ts";
export { type Member } from "./lib/services/chat/chat_messages.ts";
export {
  type InviteOnlyOptions,
  type MembershipChange,
  type RoomHead,
  type RoomMember,
} from "./lib/services/chat/membership.ts";
export { ChatRelay } from "./lib/services/chat/relay.ts";
export { type RoomBackend, type RoomBus } from "./lib/services/chat/room_bus.ts";
export {
  type AddMemberOptions,
  RoomStore,
  type RoomStoreOptions,
  type StoredMember,
} from "./lib/services/chat/room_store.ts";
export { sealStream, type SealStreamOptions } from "./lib/sealed/seal.ts";
export {
  inspectSealed,
  type OpenedSealed,
  openSealed,
  type OpenSealedOptions,
  type SealedInfo,
} from "./lib/sealed/open.ts";
export { armorDecoder, armorEncoder } from "./lib/sealed/armor.ts";
export { SealedError, type SealedErrorOptions, type SealedFailure } from "./lib/sealed/errors.ts";
export { formatCode, type PairCode, parseCode } from "./lib/pair/code.ts";
export { type Invite, InviteRefused, InviteStore } from "./lib/pair/invites.ts";
export { pair, type PairOptions, type PairResult } from "./lib/pair/initiator.ts";
export { type PairingOptions, PairingResponder } from "./lib/pair/responder.ts";
