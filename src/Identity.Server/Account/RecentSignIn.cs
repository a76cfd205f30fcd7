using System.Globalization;
using System.Security.Claims;
using static OpenIddict.Abstractions.OpenIddictConstants;

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
        long.TryParse(user.FindFirst(Claims.AuthenticationTime)?.Value, NumberStyles.Integer, CultureInfo.InvariantCulture, out var seconds)
        && time.GetUtcNow() - DateTimeOffset.FromUnixTimeSeconds(seconds) < Window;
}
