using System;
using WxToken;

// A minimal app for the loader tests: loads the engine the way a user's app would and reports what happened.
public static class Program
{
    public static int Main(string[] args)
    {
        try
        {
            if (args.Length > 0) WxTokenLibrary.Path = args[0];
            string v = WxAccessToken.EngineVersion;
            Console.WriteLine("OK " + v + " " + (WxTokenLibrary.LoadedFrom ?? "(default probing)"));
            return 0;
        }
        catch (WxTokenException e)
        {
            Console.WriteLine("ERR " + e.GetType().Name + " " + e.Status);
            Console.WriteLine(e.Message);
            return 3;
        }
    }
}
