namespace Identity.Server.Mfa;

/// <summary>
/// How a client finishes a password login that needs a second factor (the pattern of Auth0's mfa-otp grant): the
/// password grant answers 400 {"error":"mfa_required","mfa_token":...}; the client then posts to the token endpoint
/// grant_type=urn:identity:params:oauth:grant-type:mfa-otp, mfa_token, otp (the code), method (totp | backup_code)
/// and scope, with its usual client authentication.
/// </summary>
public static class MfaGrant
{
    public const string Type = "urn:identity:params:oauth:grant-type:mfa-otp";
    public const string MfaRequired = "mfa_required";
    public const string MfaToken = "mfa_token";
    public const string Code = "otp";
    public const string Method = "method";
    public const string Reason = "reason";
}
