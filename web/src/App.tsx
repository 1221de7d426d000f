import { useCallback, useEffect, useRef, useState, type FormEvent } from "react";
import { Provider, useQuery, type Client } from "urql";
import { VIEWER_QUERY, describeError, makeClient, type StateChange, type Viewer } from "./api";
import { JobList, DEFAULT_FILTER, type ListFilter } from "./JobList";
import { JobPage } from "./JobPage";
import { useLiveFeed } from "./live";

const TOKEN_KEY = "haul.token";

function storedToken(): string | null {
  try {
    return localStorage.getItem(TOKEN_KEY);
  } catch {
    return null;
  }
}

export function App() {
  const [token, setToken] = useState<string | null>(storedToken);
  const [notice, setNotice] = useState<string | null>(null);

  const signIn = (t: string) => {
    localStorage.setItem(TOKEN_KEY, t);
    setNotice(null);
    setToken(t);
  };
  const signOut = useCallback((message: string | null) => {
    localStorage.removeItem(TOKEN_KEY);
    setNotice(message);
    setToken(null);
  }, []);

  if (!token) return <TokenPrompt notice={notice} onSubmit={signIn} />;
  return <Connected key={token} token={token} onSignOut={signOut} />;
}

function TokenPrompt({ notice, onSubmit }: { notice: string | null; onSubmit: (token: string) => void }) {
  const [value, setValue] = useState("");
  const submit = (e: FormEvent) => {
    e.preventDefault();
    const t = value.trim().replace(/^bearer\s+/i, "");
    if (t) onSubmit(t);
  };
  return (
    <div className="token-page">
      <form className="token-card" onSubmit={submit} data-testid="token-form">
        <h1>
          <span className="logo" aria-hidden="true">
            ⇩
          </span>{" "}
          haul
        </h1>
        <p>Every request to haul needs an API token.</p>
        {notice ? (
          <div className="banner error" role="alert" data-testid="token-notice">
            {notice}
          </div>
        ) : null}
        <label htmlFor="token">API token</label>
        <input
          id="token"
          type="password"
          autoComplete="off"
          spellCheck={false}
          placeholder="haul_…"
          value={value}
          onChange={(e) => setValue(e.target.value)}
          data-testid="token-input"
          autoFocus
        />
        <button type="submit" className="btn primary" data-testid="token-submit" disabled={!value.trim()}>
          Sign in
        </button>
        <p className="muted small">
          The first admin's token is in <code>.haul/admin-token</code> in the server's data directory (<code>cat .haul/admin-token</code>), unless the
          server was started with <code>HAUL_ADMIN_TOKEN</code>. An admin makes tokens for other users with the <code>createApiToken</code> mutation. The
          token is kept in this browser's local storage until you sign out.
        </p>
      </form>
    </div>
  );
}

type SocketState = "connecting" | "live" | "down";

function Connected({ token, onSignOut }: { token: string; onSignOut: (message: string | null) => void }) {
  const [conn, setConn] = useState<{ client: Client; dispose(): void } | null>(null);
  const [socket, setSocket] = useState<SocketState>("connecting");
  const [reconnects, setReconnects] = useState(0);
  const signOutRef = useRef(onSignOut);
  signOutRef.current = onSignOut;

  useEffect(() => {
    let refused = false;
    const c = makeClient(token, {
      onUnauthenticated: () => {
        if (refused) return;
        refused = true;
        // Leave the render that noticed it first.
        setTimeout(() => signOutRef.current("The server refused this token (UNAUTHENTICATED): it is wrong or was revoked. Enter a valid one."), 0);
      },
      onReconnected: () => setReconnects((n) => n + 1),
      onSocketState: setSocket,
    });
    setConn(c);
    return () => c.dispose();
  }, [token]);

  if (!conn) return null;
  return (
    <Provider value={conn.client}>
      <Shell socket={socket} reconnects={reconnects} onSignOut={() => onSignOut(null)} />
    </Provider>
  );
}

function useHashRoute(): { page: "list" } | { page: "job"; id: string } {
  const [hash, setHash] = useState(() => location.hash);
  useEffect(() => {
    const on = () => setHash(location.hash);
    window.addEventListener("hashchange", on);
    return () => window.removeEventListener("hashchange", on);
  }, []);
  const m = /^#\/jobs\/([^/?]+)/.exec(hash);
  if (m?.[1]) {
    try {
      return { page: "job", id: decodeURIComponent(m[1]) };
    } catch {
      /* fall through to the list */
    }
  }
  return { page: "list" };
}

function Shell({ socket, reconnects, onSignOut }: { socket: SocketState; reconnects: number; onSignOut: () => void }) {
  const [viewerResult] = useQuery<{ viewer: Viewer }>({ query: VIEWER_QUERY, requestPolicy: "cache-first" });
  const route = useHashRoute();
  const [filter, setFilter] = useState<ListFilter>(DEFAULT_FILTER);
  const [created, setCreated] = useState(0);
  const createdTimer = useRef<ReturnType<typeof setTimeout> | null>(null);

  // A job created elsewhere shows up from the event at once; refetch soon after for the counts.
  const onEvent = useCallback((e: StateChange) => {
    if (e.kind !== "CREATED" || createdTimer.current) return;
    createdTimer.current = setTimeout(() => {
      createdTimer.current = null;
      setCreated((n) => n + 1);
    }, 500);
  }, []);
  useEffect(() => () => void (createdTimer.current && clearTimeout(createdTimer.current)), []);
  const live = useLiveFeed(onEvent);

  const viewer = viewerResult.data?.viewer;
  useEffect(() => {
    document.title = route.page === "job" ? "haul · job" : "haul · jobs";
  }, [route.page]);

  return (
    <div className="app">
      <header className="topbar">
        <a href="#/" className="brand" data-testid="brand">
          <span className="logo" aria-hidden="true">
            ⇩
          </span>{" "}
          haul
        </a>
        <nav>
          <a href="#/" className={route.page === "list" ? "active" : ""}>
            Jobs
          </a>
        </nav>
        <div className="spacer" />
        <span className={`ws ws-${socket}`} data-testid="ws-status" title="live updates (WebSocket)">
          {socket === "live" ? "● live" : socket === "connecting" ? "○ connecting" : "○ offline, retrying"}
        </span>
        {viewer ? (
          <span className="viewer" data-testid="viewer">
            {viewer.user} <span className="role">{viewer.role}</span>
          </span>
        ) : null}
        <button type="button" className="btn" onClick={onSignOut} data-testid="sign-out">
          Sign out
        </button>
      </header>
      <main>
        {viewerResult.error && !viewer ? (
          <div className="banner error" role="alert">
            {describeError(viewerResult.error)}
          </div>
        ) : !viewer ? (
          <p className="muted">Connecting…</p>
        ) : route.page === "job" ? (
          <JobPage key={route.id} id={route.id} />
        ) : (
          <JobList viewer={viewer} filter={filter} setFilter={setFilter} live={live} refreshKey={reconnects + created} />
        )}
      </main>
    </div>
  );
}
