using System.Runtime.CompilerServices;

[assembly: InternalsVisibleTo("WxToken.Tests")]
[assembly: InternalsVisibleTo("WxToken.Bench")]
