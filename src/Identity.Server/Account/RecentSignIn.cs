using System.Security.Claims;

namespace Identity.Server.Account;

/// <summary>
/// Changing how an account signs in (a passkey, an authenticator app) needs a sign-in of the last 15 minutes (its
/// auth_time), not just a session: someone who got hold of a session cookie or an access token cannot leave a factor
/// of theirs behind on the account.
/// </summary>
public static class RecentSignIn
{
    public static readonly TimeSpan Window = TimeSpan.FromMinutes(15);

    public static bool Holds(ClaimsPrincipal user, TimeProvider time) =>
        Connect.PrincipalFactory.AuthenticatedAt(user) is { } authenticated && time.GetUtcNow() - authenticated < Window;
}
